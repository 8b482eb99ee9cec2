package main

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
)

// humanDuration says how long d is the way Docker does ("5 seconds",
// "About an hour", "3 days").
func humanDuration(d time.Duration) string {
	s := int(d.Seconds())
	switch {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(d.Minutes())
	switch {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(d.Round(time.Hour).Hours())
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", h/24/365)
}

// ago is "5 seconds ago" for a past timestamp, "" for none.
func (c *cli) ago(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return humanDuration(c.clock().Sub(ts.AsTime())) + " ago"
}

// lowerFirst lower-cases the first letter, for a duration inside a
// sentence: "Running less than a second ago".
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// stateName is a task state in lower case: "running".
func stateName(s api.TaskState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
}

// stateTitle is a task state as `service ps` shows it: "Running".
func stateTitle(s api.TaskState) string {
	n := stateName(s)
	return strings.ToUpper(n[:1]) + n[1:]
}

// enumName turns "NODE_ROLE_MANAGER" into "manager", given its prefix.
func enumName(s fmt.Stringer, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), prefix))
}

// truncate shortens s to n runes, marking the cut with "…".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
