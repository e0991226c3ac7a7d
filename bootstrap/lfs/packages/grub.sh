# GRUB 2.06 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptations:
# - --prefix=$out and the book's /etc (grub.d's scripts, the default settings) under $out.
# - Without LFS's grub-2.06-upstream_fixes-1.patch (the book's own; Debian's package carries other
#   fixes of its own).
# - The book runs no tests (they need qemu and the firmware of each platform).
unset {C,CPP,CXX,LD}FLAGS

./configure --prefix="$out"          \
            --sysconfdir="$out"/etc  \
            --disable-efiemu       \
            --disable-werror

make

make install
mkdir -pv "$out"/share/bash-completion/completions
mv -v "$out"/etc/bash_completion.d/grub "$out"/share/bash-completion/completions
