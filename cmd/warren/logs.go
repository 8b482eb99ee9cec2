package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
)

// logsOpts are the flags of `service logs` and `logs`.
type logsOpts struct {
	follow, timestamps, noTaskIDs bool
	tail, since                   string
}

func (o *logsOpts) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVarP(&o.follow, "follow", "f", false, "go on with new lines, and the tasks that replace others, until Ctrl-C")
	f.StringVarP(&o.tail, "tail", "n", "all", `how many of the last lines of each task to show ("all", or a number)`)
	f.StringVar(&o.since, "since", "", "show lines since a time: a duration ago (10m, 1h30m) or a time (2025-01-02T15:04:05Z, 2025-01-02)")
	f.BoolVarP(&o.timestamps, "timestamps", "t", false, "show when each line was written")
	f.BoolVar(&o.noTaskIDs, "no-task-ids", false, "name tasks without their IDs")
}

func newServiceLogsCmd(c *cli) *cobra.Command {
	o := &logsOpts{}
	cmd := &cobra.Command{
		Use:   "logs SERVICE",
		Short: "Show the output of a service's tasks, from the nodes they ran on",
		Long: `Show the output of a service's tasks, from the nodes they ran on, in time
order. Each line is named after its task and node (web.1.<task ID>@node-1).
A node that cannot be reached is told about on stderr; the other nodes'
lines still come. With -f, new lines come as they are written, and the tasks
that replace others are followed too.`,
		Args: args(1, 1, "SERVICE"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.logs(cmd, &api.LogsRequest{Service: a[0]}, o)
		},
	}
	o.flags(cmd)
	return cmd
}

func newLogsCmd(c *cli) *cobra.Command {
	o := &logsOpts{}
	cmd := &cobra.Command{
		Use:   "logs TASK",
		Short: "Show the output of one task (an ID or a unique ID prefix)",
		Args:  args(1, 1, "TASK"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.logs(cmd, &api.LogsRequest{Task: a[0]}, o)
		},
	}
	o.flags(cmd)
	return cmd
}

// request completes req from the flags.
func (o *logsOpts) request(req *api.LogsRequest, now time.Time) error {
	req.Follow = o.follow
	if o.since != "" {
		t, err := parseSince(o.since, now)
		if err != nil {
			return err
		}
		req.Since = timestamppb.New(t)
	}
	switch o.tail {
	case "all", "":
	case "0":
		// The API's 0 means all; none of the old lines is the same as
		// only lines from now on.
		if req.Since == nil || req.Since.AsTime().Before(now) {
			req.Since = timestamppb.New(now)
		}
	default:
		n, err := strconv.ParseInt(o.tail, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid --tail %q: use a number of lines, or \"all\"", o.tail)
		}
		req.Tail = n
	}
	return nil
}

// parseSince reads --since: a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(secs, 0), nil
	}
	return time.Time{}, fmt.Errorf("invalid --since %q: use a duration (10m, 1h30m), a time (2025-01-02T15:04:05Z) or a date (2025-01-02)", s)
}

// logs streams the lines to stdout (a task's stderr to stderr) and the
// notices to stderr. Ctrl-C ends a follow: that is how it is meant to end.
func (c *cli) logs(cmd *cobra.Command, req *api.LogsRequest, o *logsOpts) error {
	if err := o.request(req, c.clock()); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := newLogPrinter(c, o)
	p.learn(ctx, req)
	err = cl.Logs(ctx, req, func(m *api.LogMessage) error { return p.print(ctx, m) })
	if errors.Is(err, context.Canceled) {
		return nil // Ctrl-C
	}
	return err
}

// learn fetches the names of the tasks the call will show, so that their
// lines line up from the start.
func (p *logPrinter) learn(ctx context.Context, req *api.LogsRequest) {
	cl, err := p.c.client()
	if err != nil {
		return
	}
	p.hosts = p.c.hostnames(ctx)
	if req.GetTask() != "" {
		if resp, err := cl.GetTask(ctx, &api.GetTaskRequest{Task: req.GetTask()}); err == nil {
			p.name(resp.GetTask())
		}
		return
	}
	if resp, err := cl.ListTasks(ctx, &api.ListTasksRequest{Service: req.GetService()}); err == nil {
		for _, t := range resp.GetTasks() {
			p.name(t)
		}
	}
}

// padRight pads a name to width, so that the lines after it line up.
func padRight(s string, width int) string {
	if len(s) >= width {
		return s
	}
	return s + strings.Repeat(" ", width-len(s))
}
