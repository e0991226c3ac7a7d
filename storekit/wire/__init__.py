"""Nix's wire formats, pure: values and framing (`framing`), the typed values (`values`), the
encodings both protocols share (`common`), and the versioned serve (`serve`) and worker (`worker`)
protocol encodings. Bytes in, values out, and back; the remote-build code drives them over ssh."""
