// Command mkimage builds a small busybox image as an OCI archive, for the
// quick start and tests on machines with no registry:
//
//	go run ./hack/mkimage -o demo.tar -ref warren.local/demo:latest
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/warren-project/warren/internal/ociimage"
)

func main() {
	out := flag.String("o", "busybox.tar", "archive to write")
	ref := flag.String("ref", "warren.local/busybox:latest", "image reference to name it")
	busybox := flag.String("busybox", "/bin/busybox", "a static busybox binary (Debian: busybox-static)")
	flag.Parse()
	if err := build(*out, *ref, *busybox); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func build(out, ref, busybox string) error {
	files, err := ociimage.BusyboxFiles(busybox)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	cfg := ociimage.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}
	if err := ociimage.Build(f, ref, files, cfg); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
