# grub (LFS 12.3 chapter 8), adapted to the store by rule: --prefix=$out, the book's
# /usr /etc /var paths under $out, tests through run_tests, patches applied by the builder.
# Not yet built by storekit: expect to adjust it when it is.
unset {C,CPP,CXX,LD}FLAGS

echo depends bli part_gpt > grub-core/extra_deps.lst

./configure --prefix="$out"          \
            --sysconfdir="$out"/etc      \
            --disable-efiemu       \
            --disable-werror

make

make install
mv -v "$out"/etc/bash_completion.d/grub "$out"/share/bash-completion/completions
