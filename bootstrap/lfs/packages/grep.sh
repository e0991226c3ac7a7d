# Grep (LFS 12.3 §8.35): egrep and fgrep stop warning that they are obsolescent.
sed -i "s/echo/#echo/" src/egrep.sh
./configure --prefix="$out"
make
run_tests make check
make install
