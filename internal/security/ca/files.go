package ca

import (
	"fmt"
	"io/fs"
	"os"
)

// readFile reads one of this package's files and, when it is missing, says
// so in a way that names the file and keeps fs.ErrNotExist for errors.Is.
func readFile(path, hint string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return data, nil
	}
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("ca: %s not found (%s): %w", path, hint, fs.ErrNotExist)
	}
	return nil, fmt.Errorf("ca: read %s: %w", path, err)
}

func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ca: create %s: %w", dir, err)
	}
	return nil
}
