# Texinfo, temporary (LFS 12.3 §7.11), with chapter 6's tools and chapter 7's perl.
# Store adaptation: --prefix=$out.
./configure --prefix="$out"
make
make install
