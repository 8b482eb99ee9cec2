package logfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// DriverCommand is the command the warren binary answers to as a logging
// binary: the shim runs `warren log-driver CONFIG`.
const DriverCommand = "log-driver"

// DriverConfig is what the executor tells the logging binary it starts
// through the shim.
type DriverConfig struct {
	Path     string `json:"path"`
	MaxSize  int64  `json:"max_size,omitempty"`
	MaxFiles int    `json:"max_files,omitempty"`
}

// Arg is c as the single argument of the driver command. The shim passes
// the logging URI's query as unordered key/value arguments, so everything
// rides in one value, after the one key DriverCommand.
func (c DriverConfig) Arg() string {
	b, _ := json.Marshal(c) // strings and numbers: cannot fail
	return string(b)
}

// ParseDriverConfig reads the argument Arg made.
func ParseDriverConfig(arg string) (DriverConfig, error) {
	var c DriverConfig
	if err := json.Unmarshal([]byte(arg), &c); err != nil {
		return c, fmt.Errorf("log driver configuration %q: %w", arg, err)
	}
	if !filepath.IsAbs(c.Path) {
		return c, fmt.Errorf("log driver configuration %q: the path must be absolute", arg)
	}
	return c, nil
}

// Drive writes a container's stdout and stderr to the log cfg names until
// both streams end, after calling ready once the log is open (the shim
// starts the container then). When the log cannot be opened, the streams
// are read and dropped: a container must not block on an unread pipe.
func Drive(cfg DriverConfig, stdout, stderr io.Reader, ready func() error) error {
	w, err := OpenWriter(cfg.Path, Options{MaxSize: cfg.MaxSize, MaxFiles: cfg.MaxFiles})
	if err != nil {
		return errors.Join(err, discard(ready, stdout, stderr))
	}
	if err := ready(); err != nil {
		w.Close()
		return fmt.Errorf("tell the shim the log driver is ready: %w", err)
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []struct {
		name string
		r    io.Reader
	}{{Stdout, stdout}, {Stderr, stderr}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Copy(w, s.name, s.r)
		}()
	}
	wg.Wait()
	return errors.Join(errs[0], errs[1], w.Close())
}

func discard(ready func() error, streams ...io.Reader) error {
	if err := ready(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, r := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(io.Discard, r)
		}()
	}
	wg.Wait()
	return nil
}

// driverGrace is how long the driver goes on reading after the shim's
// SIGTERM: the shim closes the pipes before it signals, so the streams end
// at once unless something else holds them open.
const driverGrace = 5 * time.Second

// DriverMain runs the shim's logging binary protocol and returns the exit
// code: the container's stdout on fd 3, its stderr on fd 4, and fd 5 to
// close (after writing a byte) once ready. It ends when both streams end,
// or driverGrace after SIGTERM. Errors go to errOut.
func DriverMain(arg string, errOut io.Writer) int {
	stdout, stderr := os.NewFile(3, "CONTAINER_STDOUT"), os.NewFile(4, "CONTAINER_STDERR")
	wait := os.NewFile(5, "CONTAINER_WAIT")
	ready := func() error {
		_, err := wait.Write([]byte{0})
		return errors.Join(err, wait.Close())
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() {
		cfg, err := ParseDriverConfig(arg)
		if err != nil {
			done <- errors.Join(err, discard(ready, stdout, stderr))
			return
		}
		done <- Drive(cfg, stdout, stderr, ready)
	}()
	var err error
	select {
	case err = <-done:
	case <-term:
		select {
		case err = <-done:
		case <-time.After(driverGrace):
			err = fmt.Errorf("container streams still open %s after SIGTERM", driverGrace)
		}
	}
	if err != nil {
		fmt.Fprintf(errOut, "warren log-driver: %v\n", err)
		return 1
	}
	return 0
}
