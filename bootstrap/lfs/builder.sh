# storekit bootstrap: the generic builder every package runs (with the seed's bash, `bash -e builder.sh`).
#
# It does what the LFS book asks of the reader around each package's commands: a clean environment,
# PATH made of the inputs' bin directories (the planner orders them: own predecessors, then the
# previous stage, then any extra stage), unpack the first source, apply the patches, run the
# package's script (the book's commands, installing into $out), then check the result: libtool
# archives removed, and no file may mention a host path (/usr/lib/x86_64-linux-gnu, /tools/ ...)
# unless the profile allows it. Changing this file changes every package's derivation.

set -eu -o pipefail
umask 022
export LC_ALL="${LC_ALL:-POSIX}"
export HOME=/homeless-shelter
# Fixed build dates and hash seeds, so that a package rebuilds bit for bit (`bootstrap check`): gcc
# takes __DATE__ and __TIME__ from SOURCE_DATE_EPOCH (gdbm put its build time in libgdbm.so), Python
# writes checked-hash .pycs with it (PEP 552; timestamp .pycs hold the source's install-time mtime,
# which the store then sets to 1, so they were stale as well as different), and groff, texinfo and
# vim date their output by it. 1980-01-01 is the earliest date a zip file (a wheel) can hold.
# PYTHONHASHSEED=0 fixes the order of the sets that Python scripts print or marshal into .pycs.
export SOURCE_DATE_EPOCH=315532800 PYTHONHASHSEED=0

# The planner passes lists as space-separated words ($inputs, $srcs, $patches …): store paths and
# file names never hold spaces, but they are read into arrays so no glob character is ever expanded.
read -ra input_list <<< "$inputs"
read -ra src_list <<< "${srcs:-}"
read -ra patch_list <<< "${patches:-}"
read -ra allowed_failure_list <<< "${allowedTestFailures:-}"

# shellcheck disable=SC2123 # PATH is rebuilt from nothing on purpose: only the inputs' directories
PATH=
for p in "${input_list[@]}"; do
    for d in "$p/bin" "$p/sbin"; do
        if [ -d "$d" ]; then PATH="${PATH:+$PATH:}$d"; fi
    done
done
export PATH
export SHELL="$seed/bin/bash" CONFIG_SHELL="$seed/bin/bash"

# With LFS_INPUT_FLAGS=1 (a stage variable), every input's include and lib directories reach the
# compilers made by wrap_cc, as nixpkgs' setup hooks do: the store has no /usr to find them in.
if [ -n "${LFS_INPUT_FLAGS:-}" ]; then
    NIX_CFLAGS_COMPILE='' NIX_LDFLAGS=''

    for p in "${input_list[@]}"; do
        [ "$p" = "$seed" ] && continue
        if [ -d "$p/include" ]; then NIX_CFLAGS_COMPILE="$NIX_CFLAGS_COMPILE -isystem $p/include"; fi
        if [ -d "$p/lib" ]; then NIX_LDFLAGS="$NIX_LDFLAGS -L$p/lib -Wl,-rpath,$p/lib"; fi
    done
    export NIX_CFLAGS_COMPILE NIX_LDFLAGS
fi
export MAKEFLAGS="-j${NIX_BUILD_CORES:-1}"
unset inputs

die() { echo "builder: $*" >&2; exit 1; }

# The store path of the source named FILE (as declared in the profile).
source_path() {
    local s
    for s in "${src_list[@]}"; do
        case "${s##*/}" in ????????????????????????????????-"$1") echo "$s"; return 0 ;; esac
    done
    die "no source named '$1' (sources: ${src_list[*]})"
}

# Unpack ARCHIVE into the current directory and print the one top-level directory it made; an
# archive that makes none, or several, is an error that names them.
unpack() {
    local archive=$1 before d
    local -a made=()
    before=$(ls -A)
    case "$archive" in
        *.tar|*.tar.*|*.tgz|*.tbz2|*.txz) tar -xf "$archive" ;;
        *) die "do not know how to unpack '$archive'" ;;
    esac
    for d in */; do
        [ -d "$d" ] || continue  # no match: the pattern itself
        d=${d%/}
        case $'\n'"$before"$'\n' in *$'\n'"$d"$'\n'*) ;; *) made+=("$d") ;; esac
    done
    case ${#made[@]} in
        1) echo "${made[0]}" ;;
        0) die "'${archive##*/}' unpacked into no new top-level directory (a tarball of loose files?)" ;;
        *) die "'${archive##*/}' unpacked into ${#made[@]} top-level directories (${made[*]}), not one" ;;
    esac
}

# The sources named LIB-* (LIB one of mpfr gmp mpc), each unpacked and renamed to LIB in the current
# directory: gcc builds them in its tree (LFS §5.3 and §6.18). Debian's gmp orig (6.2.1+dfsg1) has
# no doc/ (the GFDL manual is removed), which gmp's configure still lists: it gets an empty one.
gcc_unpack_libraries() {
    local lib s
    for lib in mpfr gmp mpc; do
        for s in "${src_list[@]}"; do
            case "${s##*/}" in
                ????????????????????????????????-"$lib"[-_]*) mv -v "$(unpack "$s")" "$lib" ;;
            esac
        done
    done
    if [ -d gmp ] && [ ! -e gmp/doc/Makefile.in ]; then
        mkdir -p gmp/doc
        printf 'all install install-strip uninstall check installcheck clean distclean mostlyclean maintainer-clean:\n\t@:\n' \
            > gmp/doc/Makefile.in
    fi
}

# The book's edit of gcc/config/i386/t-linux64 on x86_64: 64-bit libraries go to lib, not lib64.
gcc_lib64_to_lib() {
    case $(uname -m) in
        x86_64) sed -e '/m64=/s/lib64/lib/' -i.orig gcc/config/i386/t-linux64 ;;
    esac
}

# Run a test suite: `run_tests make check`. Skipped unless the stage or package enables checks; a
# failure is tolerated only when every line reporting one names an allowed test.
run_tests() {
    if [ -z "$doCheck" ]; then echo "builder: tests skipped (check = false)"; return 0; fi
    local log="$NIX_BUILD_TOP/tests.log" status=0 line name ok bad=""
    "$@" > "$log" 2>&1 || status=$?
    cat "$log"
    [ "$status" -eq 0 ] && return 0
    while IFS= read -r line; do
        ok=""
        for name in "${allowed_failure_list[@]}"; do
            case "$line" in *"$name"*) ok=1 ;; esac
        done
        [ -n "$ok" ] || bad="$bad$line"$'\n'
    done < <(grep -E '(^|[^A-Za-z])FAIL(ED)?([^A-Za-z]|$)' "$log" | grep -vE '^# ?(X?FAIL|ERROR): +0' || true)
    if [ -n "$bad" ]; then
        die "tests failed ($*, status $status); not in allowed_test_failures:"$'\n'"$bad"
    fi
    echo "builder: tests failed only where allowed (${allowed_failure_list[*]})"
}

# Fail when a file of $out mentions a host path (and the profile does not allow that file). A host
# path counts where it starts a path: the seed's own files live under .../usr/lib/x86_64-linux-gnu
# too, and a store path ending in it is no reference to the host.
scan_host_paths() {
    local patterns="$NIX_BUILD_TOP/host-paths" file rel glob allowed found=""
    # shellcheck disable=SC2016 # sed expressions: $ and ( are regex characters here, not expansions
    printf '%s\n' "$hostPaths" | grep -v '^$' | sed -e 's/[].[\*^$()+?{|]/\\&/g' \
        -e 's/^/(^|[^A-Za-z0-9._+-])/' > "$patterns" || return 0
    while IFS= read -r file; do
        rel=${file#"$out"/}
        allowed=""
        while IFS= read -r glob; do
            # shellcheck disable=SC2053
            if [ -n "$glob" ] && [[ $rel == $glob ]]; then allowed=1; fi
        done <<< "$hostPathsAllowed"
        if [ -z "$allowed" ]; then
            found="$found  $rel: $(grep -aoE -f "$patterns" "$file" | sed 's|^[^/]||' | sort -u | tr '\n\0' '  ')"$'\n'
        fi
    done < <(grep -rlaE -f "$patterns" "$out" || true)
    if [ -n "$found" ]; then
        die "output mentions host paths (allow them with allow_host_paths in the profile):"$'\n'"$found"
    fi
}

# wrap_cc DIR TARGET GCC LIBC HEADERS [CXXLIB]: compilers in DIR (TARGET-gcc, -cc, -cpp, -g++, -c++;
# plain gcc … when TARGET is empty) that run GCC's against the C library installed at LIBC (with
# --prefix=LIBC) and the kernel headers at HEADERS, and link programs to run with LIBC's loader and
# libraries (CXXLIB adds a libstdc++ installed there). This is what the book gets from its single
# $LFS sysroot; in the store each package has its own prefix, so the wrapper names them. Link flags
# go through a specs file, so they apply only when gcc links. A C++ compile given -nostdinc++ (a
# libstdc++ building itself against its new headers) gets none of CXXLIB's flags: its headers would
# answer the new ones' #include_next (<fenv.h> in gcc pass 2, whose guard then hides glibc's fenv_t).
wrap_cc() {
    local dir=$1 target=$2 gcc=$3 libc=$4 headers=$5 cxxlib=${6:-} prefix name real loader ver triplet
    local specs cflags cxxflags="" extra
    prefix=${target:+$target-}
    mkdir -p "$dir" "$dir/../nix-support"
    specs=$(cd "$dir/../nix-support" && pwd)/cc.specs
    set -- "$libc"/lib/ld-linux*.so.*
    loader=$1
    [ -e "$loader" ] || die "wrap_cc: no dynamic loader in $libc/lib"
    printf '*link:\n+ %%{!static:%%{!static-pie:-dynamic-linker %s}} %%{!static:-rpath %s%s}\n\n' \
        "$loader" "$libc/lib" "${cxxlib:+ -rpath $cxxlib/lib}" > "$specs"
    cflags="-B$libc/lib/ -idirafter $libc/include -idirafter $headers/include -L$libc/lib -specs=$specs"
    if [ -n "$cxxlib" ]; then
        ver=$(ls "$cxxlib/include/c++")
        triplet=${target:-$("$gcc/bin/gcc" -dumpmachine)}
        cxxflags="-isystem $cxxlib/include/c++/$ver -isystem $cxxlib/include/c++/$ver/$triplet -L$cxxlib/lib"
    fi
    for name in gcc cc cpp g++ c++; do
        real="$gcc/bin/$prefix$name"
        [ "$name" = cc ] && real="$gcc/bin/${prefix}gcc"
        [ -x "$real" ] || continue
        case $name in g++|c++) extra=$cxxflags ;; *) extra="" ;; esac
        cat > "$dir/$prefix$name" <<WRAPPER
#!$SHELL
# storekit bootstrap: $prefix$name against $libc
link=1 extra="$extra"
for a in "\$@"; do case \$a in -c|-S|-E|-M|-MM) link= ;; -nostdinc++) extra= ;; esac; done
[ \$# -le 1 ] && link=
if [ -n "\$link" ]; then
    exec $real $cflags \$extra \${NIX_CFLAGS_COMPILE:-} "\$@" \${NIX_LDFLAGS:-}
fi
exec $real $cflags \$extra \${NIX_CFLAGS_COMPILE:-} "\$@"
WRAPPER
        chmod +x "$dir/$prefix$name"
    done
}

# libtool and configure scripts call /usr/bin/file, which no build sees: use the one on PATH
# (keeping the timestamps, so make does not rerun autotools).
fix_usr_bin_file() {
    local f
    while IFS= read -r f; do
        cp -p "$f" "$f.orig"
        sed -i 's|/usr/bin/file|file|g' "$f"
        touch -r "$f.orig" "$f"
        rm -f "$f.orig"
    done < <(grep -rlF --include=configure --include=ltmain.sh /usr/bin/file . || true)
}

# When a command fails, show why a configure script gave up (its config.log is gone with the build).
show_config_logs() {
    local f
    find "$NIX_BUILD_TOP/src" -name config.log 2>/dev/null | while IFS= read -r f; do
        if grep -q "^configure: exit [1-9]" "$f"; then
            echo "builder: $f says:"
            grep -B12 "^configure: failed program was" "$f" | tail -n 14
        fi
    done
}
trap show_config_logs ERR

mkdir -p "$NIX_BUILD_TOP/src"
cd "$NIX_BUILD_TOP/src"
if [ -n "$src" ]; then
    dir=$(unpack "$src")
    cd "$dir"
    if [ -n "${SRC_INNER:-}" ]; then
        # a Debian wrapper tarball holding the real one (gcc-12's orig)
        [ -f "$SRC_INNER" ] || die "no inner archive '$SRC_INNER' in $dir"
        cd "$(unpack "$SRC_INNER")"
    fi
    # a patch is FILE or ARCHIVE:MEMBER, optionally with #pN for its strip level (Debian's are -p2)
    for p in "${patch_list[@]}"; do
        strip=1
        case "$p" in *"#p"[0-9]) strip=${p##*#p}; p=${p%#p*} ;; esac
        case "$p" in
            *:*) echo "builder: applying ${p#*:} from ${p%%:*}"; tar -xOf "${p%%:*}" "${p#*:}" | patch -Np"$strip" ;;
            *) echo "builder: applying $p"; patch -Np"$strip" -i "$p" ;;
        esac
    done
    fix_usr_bin_file
fi

echo "builder: building $name ($stage) with PATH=$PATH"
# shellcheck source=/dev/null
source "$script"

[ -e "$out" ] || die "the script did not create \$out ($out)"
find "$out" -name '*.la' -type f -delete
scan_host_paths
echo "builder: $name done"
