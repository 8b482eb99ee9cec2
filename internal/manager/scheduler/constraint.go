package scheduler

import (
	"errors"
	"fmt"
	"strings"

	"github.com/warren-project/warren/api"
)

// ErrInvalidConstraint is wrapped by every error of ParseConstraints, so the
// API can answer InvalidArgument with errors.Is.
var ErrInvalidConstraint = errors.New("invalid placement constraint")

// Operator compares a node attribute with a constraint's value.
type Operator string

const (
	OpEqual    Operator = "=="
	OpNotEqual Operator = "!="
)

const labelPrefix = "node.labels."

// Constraint is one parsed placement constraint, such as node.labels.zone==edge.
type Constraint struct {
	// Key is the attribute: node.id, node.hostname, node.role,
	// node.platform.arch, node.platform.os or node.labels.<name>.
	Key   string
	Op    Operator
	Value string
}

// String gives the constraint back in its canonical form, as users wrote it
// minus spaces: this is how explanations name it.
func (c Constraint) String() string { return c.Key + string(c.Op) + c.Value }

// ParseConstraints parses and validates placement constraints. The error
// names every bad constraint, not just the first.
func ParseConstraints(exprs []string) ([]Constraint, error) {
	out := make([]Constraint, 0, len(exprs))
	var errs []error
	for _, e := range exprs {
		c, err := parseConstraint(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func parseConstraint(expr string) (Constraint, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidConstraint, expr, fmt.Sprintf(format, args...))
	}
	// The first operator splits key from value; the value may hold no other.
	op, i := OpNotEqual, strings.Index(expr, string(OpNotEqual))
	if j := strings.Index(expr, string(OpEqual)); j >= 0 && (i < 0 || j < i) {
		op, i = OpEqual, j
	}
	if i < 0 {
		return Constraint{}, bad("want KEY==VALUE or KEY!=VALUE")
	}
	key := strings.TrimSpace(expr[:i])
	value := strings.TrimSpace(expr[i+len(op):])
	if strings.Contains(value, "=") {
		return Constraint{}, bad("value %q holds an \"=\"; only one == or != is allowed", value)
	}
	if value == "" {
		return Constraint{}, bad("the value is empty")
	}
	if err := checkKey(key, value); err != nil {
		return Constraint{}, bad("%v", err)
	}
	return Constraint{Key: key, Op: op, Value: value}, nil
}

func checkKey(key, value string) error {
	switch key {
	case "node.id", "node.hostname", "node.platform.os", "node.platform.arch":
		return nil
	case "node.role":
		if v := strings.ToLower(value); v != "manager" && v != "worker" {
			return fmt.Errorf("role must be manager or worker, not %q", value)
		}
		return nil
	}
	if name, ok := strings.CutPrefix(key, labelPrefix); ok {
		if name == "" || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("label name %q is empty or has spaces", name)
		}
		return nil
	}
	return fmt.Errorf("unknown key %q (want node.id, node.hostname, node.role, node.platform.arch, node.platform.os or node.labels.NAME)", key)
}

// Match tells whether a node satisfies the constraint. Labels compare
// exactly; IDs, hostnames, roles, OS and architecture ignore case, and
// architectures also their aliases (x86_64 is amd64). A label the node lacks
// equals nothing, so != matches it.
func (c Constraint) Match(n *api.Node) bool {
	var have string
	exact := false
	switch c.Key {
	case "node.id":
		have = n.GetId()
	case "node.hostname":
		have = n.GetDescription().GetHostname()
	case "node.role":
		have = roleName(n.CurrentRole())
	case "node.platform.os":
		have = n.GetDescription().GetPlatform().GetOs()
	case "node.platform.arch":
		return (normalizeArch(n.GetDescription().GetPlatform().GetArchitecture()) == normalizeArch(c.Value)) == (c.Op == OpEqual)
	default:
		have = n.GetSpec().GetLabels()[strings.TrimPrefix(c.Key, labelPrefix)]
		exact = true
	}
	equal := strings.EqualFold(have, c.Value)
	if exact {
		equal = have == c.Value
	}
	return equal == (c.Op == OpEqual)
}

func roleName(r api.NodeRole) string {
	switch r {
	case api.NodeRole_NODE_ROLE_MANAGER:
		return "manager"
	case api.NodeRole_NODE_ROLE_WORKER:
		return "worker"
	}
	return ""
}

// archAliases maps what uname, distributions and Go call an architecture to
// Go's name for it, so a constraint written either way matches.
var archAliases = map[string]string{
	"x86_64":  "amd64",
	"x86-64":  "amd64",
	"x64":     "amd64",
	"aarch64": "arm64",
	"armv8":   "arm64",
	"armv7l":  "arm",
	"armv7":   "arm",
	"armhf":   "arm",
	"armv6l":  "arm",
	"i386":    "386",
	"i686":    "386",
	"x86":     "386",
	"ppc64el": "ppc64le",
}

func normalizeArch(a string) string {
	a = strings.ToLower(strings.TrimSpace(a))
	if alias, ok := archAliases[a]; ok {
		return alias
	}
	return a
}
