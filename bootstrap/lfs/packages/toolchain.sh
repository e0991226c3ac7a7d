# Not a book page: chapter 8's compiler wrappers, one script for both (the profile names what they wrap).
# glibc-toolchain: gcc pass 2 against chapter 8's glibc, with binutils pass 2, for zlib, binutils and
# gcc (in the book, chapter 8's glibc installs over chapter 5's in /usr and gcc pass 2 links against
# it from then on). system-toolchain: chapter 8's gcc and binutils against chapter 8's glibc, the
# system's `cc`, for every later package. TOOLCHAIN_GCC, _LIBC, _HEADERS and _BINUTILS are store paths.
#
# Only a C++ program gets the wrapped gcc's lib dir (libstdc++) in its RUNPATH: wrap_cc, shared with
# chapters 5 to 7, would give it to every program, and a C library built with gcc pass 2 (zlib,
# bzip2, binutils) would then keep chapter 6's gcc in the system's closure. libgcc_s, which C
# programs may need, is in glibc's lib dir (see glibc.sh). So the wrappers are made without a C++
# library, and g++ and c++ get the rpath (g++ finds its own headers and libstdc++ to link).
#
# Debug info names every header a program included, and a path in it is a reference that keeps its
# store path in the program's closure: the wrapped gcc's own headers (stddef.h …) would keep chapter
# 6's gcc pass 2 in every library glibc-toolchain builds, and chapter 8's gcc in every program of
# the system. The wrappers map the wrapped gcc's prefix to /usr, where the system's tree puts it.
# gcc pass 2's native header directory is chapter 5's glibc's include (where its headers were when it
# was built); chapter 8's glibc installs the same files (checked here), and the wrappers map that
# directory to chapter 8's, so nothing built names chapter 5's glibc.
wrap_cc "$out/bin" "" "$TOOLCHAIN_GCC" "$TOOLCHAIN_LIBC" "$TOOLCHAIN_HEADERS"
native=$(echo | "$TOOLCHAIN_GCC/bin/gcc" -E -v -x c - 2>&1 >/dev/null \
    | sed -n '/^End of search list\.$/{x;p};h')
native=${native# }
[ -d "$native" ] || die "cannot find $TOOLCHAIN_GCC's native header directory (got '$native')"
maps="-ffile-prefix-map=$TOOLCHAIN_GCC=/usr" foreign=""
if [ "$native" != "$TOOLCHAIN_LIBC/include" ]; then
    foreign=$native
    diff -r -q "$native" "$TOOLCHAIN_LIBC/include" \
        || die "$TOOLCHAIN_GCC's headers ($native) differ from $TOOLCHAIN_LIBC's"
    maps="$maps -ffile-prefix-map=$native=$TOOLCHAIN_LIBC/include"
fi
#
# A static PIE (gcc -static-pie: rcrt1.o, relocating itself at start) must have no RUNPATH: glibc
# 2.36's static-pie start crashes on one (binutils' "Static PIE" tests, gcc -static-pie hello).
# wrap_cc's specs skip the loader for -static-pie but not the rpath; the specs, the g++ rpath and the
# deps' rpaths below all leave a -static or -static-pie link alone.
sed -i 's|%{!static:-rpath |%{!static:%{!static-pie:-rpath |; s|^\(+ .*-rpath [^}]*\)}$|\1}}|' "$out/nix-support/cc.specs"
grep -q '%{!static:%{!static-pie:-rpath [^}]*}}$' "$out/nix-support/cc.specs" \
    || die "cc.specs: the rpath is not guarded against -static-pie: $(cat "$out/nix-support/cc.specs")"
#
# The stage's dep_flags give every link `-L DIR -Wl,-rpath,DIR` for each of the package's deps (the
# planner cannot know which have libraries): the rpath of a dep whose library a link does not name
# (or that has no lib dir at all, as this toolchain) would keep that dep in the closure for nothing.
# As nixpkgs' ld-wrapper does, a link keeps only the rpaths of directories holding a library it names
# with -lNAME (or -l:FILE, or by its path); the -L flags stay. The wrapped gcc's own runtime libraries
# (libquadmath, libgomp, libatomic, libitm, libasan …) are in its lib dir, which no C link has on
# its rpath otherwise: a program naming one of them gets that rpath too (-fopenmp names libgomp).
cat > "$out/nix-support/link-flags" <<LINKFLAGS
#!$SHELL
# storekit bootstrap: \$NIX_LDFLAGS for one link (its arguments), rpaths kept only where a -l library is
libs=() static=""
for a in "\$@"; do
    case \$a in
        -l?*) libs+=("\${a#-l}") ;;
        */*.so|*/*.so.*) libs+=(":\${a##*/}") ;;  # a library named by its path (cmake's way)
        -fopenmp) libs+=(gomp) ;;
        -static|-static-pie) static=1 ;;
    esac
done
flags=()
for f in \${NIX_LDFLAGS:-} -Wl,-rpath,$TOOLCHAIN_GCC/lib; do
    case \$f in
        -Wl,-rpath,*)
            [ -z "\$static" ] || continue
            d=\${f#-Wl,-rpath,}
            for l in "\${libs[@]}"; do
                case \$l in :*) file=\${l#:} ;; *) file=lib\$l.so ;; esac
                if [ -e "\$d/\$file" ]; then flags+=("\$f"); break; fi
            done ;;
        *) flags+=("\$f") ;;
    esac
done
echo "\${flags[*]}"
LINKFLAGS
chmod +x "$out/nix-support/link-flags"
for name in gcc cc cpp g++ c++; do
    [ -e "$out/bin/$name" ] || continue
    grep -q '^link=1 extra=""$' "$out/bin/$name" || die "$name: wrap_cc's wrapper is not as expected"
    # shellcheck disable=SC2016 # the wrapper's text, not an expansion
    grep -q '"$@" ${NIX_LDFLAGS:-}$' "$out/bin/$name" || die "$name: wrap_cc's link line is not as expected"
    # the rpath only where the wrapper links: gcc given a linker flag links even for `g++ -v`
    case $name in g++|c++) rpath="-Wl,-rpath,$TOOLCHAIN_GCC/lib" ;; *) rpath="" ;; esac
    sed -i -e "s|^link=1 extra=\"\"\$|link=1 extra=\"$maps\" rpath=\"$rpath\"|" \
        -e "s|-nostdinc++) extra= ;;|&  -static-libstdc++\|-static\|-static-pie) rpath= ;;|" \
        -e "s|\"\\\$@\" \\\${NIX_LDFLAGS:-}\$|\"\\\$@\" \\\$rpath \\\$($out/nix-support/link-flags \"\\\$@\")|" \
        "$out/bin/$name"
done
for tool in "$TOOLCHAIN_BINUTILS"/bin/*; do
    [ -e "$out/bin/${tool##*/}" ] || ln -s "$tool" "$out/bin/${tool##*/}"
done

# The book's sanity checks (§8.5 adjusting the toolchain, §8.28 after gcc): a program asks for the
# glibc's loader, finds its start files (store paths, not /usr/lib), and runs; C++ finds the wrapped
# gcc's libstdc++; limits.h chains to glibc's (SSIZE_MAX, PATH_MAX).
cd "$NIX_BUILD_TOP"
echo 'int main(){}' > dummy.c
"$out/bin/gcc" dummy.c -v -Wl,--verbose > dummy.log 2>&1
case "$("$out/bin/readelf" -l a.out | grep 'program interpreter')" in
    *"$TOOLCHAIN_LIBC/lib/ld-linux"*) ;;
    *) die "the program does not use $TOOLCHAIN_LIBC's loader" ;;
esac
grep -E -o "$TOOLCHAIN_LIBC/lib/S?crt[1in].*succeeded" dummy.log || die "crt files not from $TOOLCHAIN_LIBC"
./a.out
printf '#include <iostream>\n#include <climits>\nint main(){ std::cout << SSIZE_MAX << " " << PATH_MAX << std::endl; }\n' > t.cc
"$out/bin/g++" t.cc -o tcc
./tcc
"$out/bin/readelf" -d tcc | grep -q "$TOOLCHAIN_GCC/lib" || die "tcc does not find $TOOLCHAIN_GCC's libstdc++"
"$out/bin/g++" -v > /dev/null 2>&1 || die "g++ -v fails (libtool asks it whether there is a C++ compiler)"
"$out/bin/g++" -static-libstdc++ t.cc -o tcs
./tcs
for p in a.out tcs; do
    if "$out/bin/readelf" -d "$p" | grep -F "$TOOLCHAIN_GCC"; then die "$p names $TOOLCHAIN_GCC"; fi
done
# a link's rpaths: kept for a dir whose library it names, dropped for one it does not
mkdir -p ld/has ld/none
echo 'int f(void){ return 0; }' > f.c
"$out/bin/gcc" -shared -fPIC f.c -o ld/has/libstorekitf.so
echo 'int f(void); int main(void){ return f(); }' > uf.c
NIX_LDFLAGS="-L$PWD/ld/has -Wl,-rpath,$PWD/ld/has -L$PWD/ld/none -Wl,-rpath,$PWD/ld/none" \
    "$out/bin/gcc" uf.c -lstorekitf -o uf
./uf
"$out/bin/readelf" -d uf | grep -q "RUNPATH.*$PWD/ld/has" || die "uf lost the rpath to its library"
if "$out/bin/readelf" -d uf | grep -F "$PWD/ld/none"; then die "uf kept the rpath of a dir it needs nothing from"; fi
rm -rf ld f.c uf.c uf
printf '#include <stddef.h>\n#include <stdio.h>\nint main(void){ size_t n = 0; printf("%%zu\\n", n); return 0; }\n' > g.c
"$out/bin/gcc" -g g.c -o g
./g > /dev/null
if grep -F -e "$TOOLCHAIN_GCC" ${foreign:+-e "$foreign"} g; then die "a program names $TOOLCHAIN_GCC ${foreign}"; fi
rm -f dummy.c dummy.log a.out t.cc tcc tcs g.c g
# a static PIE runs (no RUNPATH), C and C++; a C program naming one of gcc's runtime libraries finds it
printf '#include <stdio.h>\nint main(void){ puts("static-pie ok"); return 0; }\n' > sp.c
"$out/bin/gcc" -static-pie sp.c -o sp
[ "$(./sp)" = "static-pie ok" ] || die "a -static-pie program does not run"
if "$out/bin/readelf" -d sp | grep -E 'RPATH|RUNPATH'; then die "a -static-pie program has an rpath"; fi
printf '#include <iostream>\nint main(){ std::cout << "ok" << std::endl; }\n' > sp.cc
"$out/bin/g++" -static-pie sp.cc -o spp
[ "$(./spp)" = "ok" ] || die "a -static-pie C++ program does not run"
if [ -e "$TOOLCHAIN_GCC/lib/libgomp.so" ]; then
    printf '#include <omp.h>\nint main(void){ return omp_get_max_threads() < 1; }\n' > omp.c
    "$out/bin/gcc" -fopenmp omp.c -o omp
    ./omp || die "an OpenMP program does not find $TOOLCHAIN_GCC's libgomp"
fi
rm -f sp.c sp sp.cc spp omp.c omp
