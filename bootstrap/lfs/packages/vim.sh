# Vim 9.0.1378 (LFS 11.3 §8.70, for 9.0.1273: the same commands), from Debian's orig (upstream's
# tree at that patch level). Store adaptations:
# - --prefix=$out. The system-wide vimrc stays the book's /etc/vimrc (compiled in: the system's
#   administrator edits it); the book's text goes to $out/etc/vimrc for the rootfs to link there.
# - The book runs the tests as the unprivileged `tester` (su tester -c "… make -j1 test"); the
#   sandbox's builder is unprivileged already. As in the book their output (binary screen data
#   mixed in) goes to vim-test.log and a failed suite does not stop the build (the book does not
#   call them critical): the builder's log shows the summary, and the build fails only when the
#   suite did not get to its end ("ALL DONE" missing, or no test executed).
# - The book's last step (`vim -c ':options'`) is interactive and left out.
echo '#define SYS_VIMRC_FILE "/etc/vimrc"' >> src/feature.h

./configure --prefix="$out"

make

if [ -n "$doCheck" ]; then
    status=0
    TERM=xterm-256color LANG=en_US.UTF-8 make -j1 test > vim-test.log 2>&1 < /dev/null || status=$?
    tr -cd '\11\12\15\40-\176' < vim-test.log | grep -E 'Executed|FAILED|ALL DONE|Test results' | tail -n 40 || true
    echo "builder: vim's test suite ended with status $status"
    grep -q 'ALL DONE' vim-test.log || die "vim's test suite did not finish (no ALL DONE in vim-test.log)"
fi

make install

ln -sv vim "$out"/bin/vi
for L in "$out"/share/man/{,*/}man1/vim.1; do
    ln -sv vim.1 "$(dirname "$L")/vi.1"
done

mkdir -p "$out"/share/doc
ln -sv ../vim/vim90/doc "$out"/share/doc/vim-9.0.1378
[ -d "$out"/share/vim/vim90/doc ] || die "no share/vim/vim90/doc: the version directory is not vim90"

mkdir -p "$out"/etc
cat > "$out"/etc/vimrc << "VIMRC"
" Begin /etc/vimrc

" Ensure defaults are set before customizing settings, not after
source $VIMRUNTIME/defaults.vim
let skip_defaults_vim=1

set nocompatible
set backspace=2
set mouse=
syntax on
if (&term == "xterm") || (&term == "putty")
  set background=dark
endif

" End /etc/vimrc
VIMRC
"$out"/bin/vim --version | head -n1
