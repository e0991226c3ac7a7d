# Not a book page. In the book, chapter 8's glibc installs over chapter 5's in /usr, and gcc pass 2
# links against it from then on. In the store the new glibc has its own prefix: $out/bin holds gcc,
# g++, cc, cpp running gcc pass 2 against it (wrap_cc in the builder), for the packages built
# before chapter 8's gcc.
wrap_cc "$out/bin" "" "$pkg_gcc_pass2" "$pkg_glibc" "$pkg_linux_headers" "$pkg_gcc_pass2"
