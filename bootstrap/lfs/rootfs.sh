# The system as one tree (storekit's [rootfs], not a book page): an FHS layout whose files are links
# into the packages' store paths, the book's merged /usr (bin, sbin and lib are links to usr/…), the
# files the profile declares (chapter 9's /etc), and nix-support/ownership, the owners and modes a
# store path cannot hold (setuid programs, a sticky /tmp), applied by `storekit bootstrap export`.
#
# $rootfsPackages: store paths in order, the first to provide a path wins (later ones are skipped,
# as the book's later installs would have overwritten earlier ones, the profile lists newest first).
# $rootfsFiles: PATH=TEXT-STORE-PATH words. $rootfsModes: `MODE UID GID PATH` lines.
read -ra packages <<< "$rootfsPackages"
read -ra files <<< "$rootfsFiles"

mkdir -p "$out"/usr/{bin,sbin,lib,libexec,include,share} \
         "$out"/{etc,var/lib,var/log,var/tmp,tmp,root,home,dev,proc,sys,run,mnt,opt,srv,boot,media}
ln -s usr/bin "$out/bin"
ln -s usr/sbin "$out/sbin"
ln -s usr/lib "$out/lib"

# Where a package's top-level directory goes in the tree.
place() {
    case $1 in
        bin|sbin|lib|libexec|include|share) echo "usr/$1" ;;
        lib64) echo usr/lib ;;
        etc) echo etc ;;
        *) return 1 ;;
    esac
}

linked=0
for p in "${packages[@]}"; do
    for top in bin sbin lib lib64 libexec include share etc; do
        [ -d "$p/$top" ] || continue
        dest=$(place "$top")
        while IFS= read -r -d '' f; do
            rel=${f#"$p/$top/"}
            target="$out/$dest/$rel"
            if [ -e "$target" ] || [ -L "$target" ]; then continue; fi
            mkdir -p "${target%/*}"
            ln -s "$f" "$target"
            linked=$((linked + 1))
        done < <(find "$p/$top/" -mindepth 1 \( -type f -o -type l \) -print0 | sort -z)
    done
done
echo "rootfs: $linked links from ${#packages[@]} packages"

for item in "${files[@]}"; do
    rel=${item%%=*}
    rm -f "$out/$rel"
    mkdir -p "$(dirname "$out/$rel")"
    cp "${item#*=}" "$out/$rel"
    chmod 644 "$out/$rel"
done

mkdir -p "$out/nix-support"
{
    echo "1777 0 0 tmp"
    echo "1777 0 0 var/tmp"
    echo "0700 0 0 root"
    while read -r mode uid gid path; do
        [ -n "$mode" ] || continue
        case $path in /*) full=$path ;; *) full=$out/$path ;; esac
        [ -e "$full" ] || die "rootfs.modes: $path does not exist"
        echo "$mode $uid $gid $path"
    done <<< "$rootfsModes"
} > "$out/nix-support/ownership"
