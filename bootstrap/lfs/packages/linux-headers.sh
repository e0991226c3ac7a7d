# Linux API headers (LFS 12.3 §5.4), installed into $out/include.
# Debian's linux orig tarball is already clean and lacks files `make mrproper` expects: set
# LINUX_SKIP_MRPROPER=1 in its profile.
if [ -z "${LINUX_SKIP_MRPROPER:-}" ]; then
    make mrproper
fi
make headers
find usr/include -type f ! -name '*.h' -delete
mkdir -p "$out"
cp -rv usr/include "$out"
