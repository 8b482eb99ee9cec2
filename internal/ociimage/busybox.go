package ociimage

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// IndexHTML is the content of /www/index.html in BusyboxFiles.
const IndexHTML = "<html><body>hello from warren</body></html>\n"

// BusyboxFiles returns the files of a minimal busybox image: /bin/busybox
// copied from busyboxPath (which must be statically linked, as Debian's
// busybox-static is), a /bin/NAME symlink for every applet it lists, /tmp,
// /root, /etc/passwd (root, nobody), /etc/group and /www/index.html.
func BusyboxFiles(busyboxPath string) ([]File, error) {
	data, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("ociimage: busybox: %w", err)
	}
	if err := checkStatic(busyboxPath, data); err != nil {
		return nil, err
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("ociimage: %s --list: %w", busyboxPath, err)
	}
	files := []File{
		{Path: "/bin/busybox", Mode: 0o755, Content: data},
		{Path: "/tmp", Mode: os.ModeDir | os.ModeSticky | 0o777},
		{Path: "/root", Mode: os.ModeDir | 0o700},
		{Path: "/etc/passwd", Content: []byte(
			"root:x:0:0:root:/root:/bin/sh\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "/etc/group", Content: []byte(
			"root:x:0:\n" +
				"nobody:x:65534:\n" +
				"nogroup:x:65534:\n")},
		{Path: "/www/index.html", Content: []byte(IndexHTML)},
	}
	applets := strings.Fields(string(out))
	slices.Sort(applets)
	for _, a := range slices.Compact(applets) {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		files = append(files, File{Path: "/bin/" + a, Linkname: "busybox"})
	}
	return files, nil
}

// checkStatic refuses a dynamically linked busybox: the image has no libc.
func checkStatic(path string, data []byte) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("ociimage: %s is not an ELF binary: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("ociimage: %s is dynamically linked; the image needs a static busybox (Debian: busybox-static)", path)
		}
	}
	return nil
}
