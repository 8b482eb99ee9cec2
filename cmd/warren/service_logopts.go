package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/spec"
)

// logOpts are the log rotation flags shared by create and update.
type logOpts struct {
	maxSize  string
	maxFiles uint32
}

func (l *logOpts) addFlags(f *pflag.FlagSet) {
	f.StringVar(&l.maxSize, "log-max-size", "", "rotate a task's log on its node at this size, such as 10M (default 10M)")
	f.Uint32Var(&l.maxFiles, "log-max-files", 0, "log files kept per task, the current one included (default 3)")
}

// apply sets the flags that were given on c.
func (l *logOpts) apply(f *pflag.FlagSet, c *api.ContainerSpec) error {
	if f.Changed("log-max-size") {
		n, err := spec.ParseMemory(l.maxSize)
		if err != nil || n <= 0 {
			return fmt.Errorf("invalid --log-max-size %q: use a size such as 10M", l.maxSize)
		}
		c.LogMaxSize = n
	}
	if f.Changed("log-max-files") {
		if l.maxFiles == 0 {
			return fmt.Errorf("invalid --log-max-files 0: keep at least 1 file")
		}
		c.LogMaxFiles = l.maxFiles
	}
	return nil
}
