# Ninja 1.11.1 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptations:
# installs into $out; configure.py runs with the python on PATH (chapter 7's: ninja keeps no
# reference to it, so chapter 8's python is not a dep). The book's NINJAJOBS edit and its tests:
# ninja_test without SubprocessTest.SetWithLots, as the book runs it.
sed -i '/int Guess/a \
  int   j = 0;\
  char* jobs = getenv( "NINJAJOBS" );\
  if ( jobs != NULL ) j = atoi( jobs );\
  if ( j > 0 ) return j;\
' src/ninja.cc

python3 configure.py --bootstrap

if [ -n "$doCheck" ]; then
    ./ninja ninja_test
fi
run_tests ./ninja_test --gtest_filter=-SubprocessTest.SetWithLots

install -vDm755 ninja -t "$out"/bin/
install -vDm644 misc/bash-completion "$out"/share/bash-completion/completions/ninja
install -vDm644 misc/zsh-completion  "$out"/share/zsh/site-functions/_ninja
