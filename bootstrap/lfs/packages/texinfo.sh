# Texinfo 6.8 (LFS 11.2; 11.3 has 7.0.2, the same commands), from Debian's orig (upstream's
# tarball). Store adaptations: --prefix=$out; chapter 8's perl (a dep) runs texi2any and builds its
# XS modules, chapter 8's ncurses for info. LFS 11.2's gnulib edit (__attribute_nonnull__) was for
# glibc 2.34's headers; glibc 2.36 has that name (chapter 7's texinfo-tmp builds without the edit).
# The book's optional rebuild of share/info/dir is for a system with other packages' info files.
./configure --prefix="$out"

make

run_tests make check

make install

make TEXMF="$out"/share/texmf install-tex
