# Intltool 0.51.0 (LFS 11.3), from Debian's orig (upstream's tarball). Store adaptations:
# --prefix=$out; chapter 8's XML::Parser (a dep) is in its own store path, so configure, the tests
# and the installed programs that load it (intltool-merge, intltool-update …) are told where: the
# programs by a `use lib` line after their #! line.
xml_parser_pm=$(find "$pkg_xml_parser"/lib -path '*/XML/Parser.pm')
xml_parser_lib=${xml_parser_pm%/XML/Parser.pm}
export PERL5LIB="$xml_parser_lib${PERL5LIB:+:$PERL5LIB}"

sed -i 's:\\\${:\\\$\\{:' intltool-update.in

./configure --prefix="$out"

make

run_tests make check

make install
install -v -Dm644 doc/I18N-HOWTO "$out"/share/doc/intltool-0.51.0/I18N-HOWTO
for f in "$out"/bin/*; do
    if grep -q 'XML::Parser' "$f"; then
        sed -i "1a use lib '$xml_parser_lib';" "$f"
    fi
done
