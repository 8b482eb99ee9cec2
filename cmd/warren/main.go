// Command warren is Warren's single binary: `warren cluster init` runs a
// manager, every other command is a client of the Control API through
// pkg/client. Installed as `wrn` too (a symlink), it behaves the same.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// exitError ends the command with a code other than 1 (130 after Ctrl-C),
// printing msg (if any) as it is, without "Error: ".
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// run executes the command line argv (argv[0] is the program) and returns
// the exit code. Tests call it in-process.
func run(ctx context.Context, argv []string, in io.Reader, out, errOut io.Writer, opts ...func(*cli)) int {
	name := "warren"
	if len(argv) > 0 && filepath.Base(argv[0]) == "wrn" {
		name = "wrn"
	}
	c := &cli{in: in, out: out, err: errOut}
	for _, o := range opts {
		o(c)
	}
	defer c.close()
	root := newRootCmd(name, c)
	root.SetArgs(argv[1:])
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(errOut, ee.msg)
		}
		return ee.code
	}
	fmt.Fprintf(errOut, "Error: %s\n", err)
	return 1
}
