package scheduler

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/warren-project/warren/api"
)

func TestConstraintMatch(t *testing.T) {
	edge := mkNode("node-abc", hostname("edge-01"), labels("zone", "edge", "ssd", "true"), role(api.NodeRole_NODE_ROLE_MANAGER))
	arm := mkNode("node-def", platform("aarch64", "linux"))
	x86 := mkNode("node-ghi", platform("x86_64", "Linux"))
	cases := []struct {
		expr string
		node *api.Node
		want bool
	}{
		{"node.id==node-abc", edge, true},
		{"node.id!=node-abc", edge, false},
		{"node.id==node-def", edge, false},
		{"node.hostname==edge-01", edge, true},
		{"node.hostname==EDGE-01", edge, true},
		{"node.hostname!=edge-01", arm, true},
		{"node.role==manager", edge, true},
		{"node.role==Manager", edge, true},
		{"node.role==worker", edge, false},
		{"node.role!=manager", arm, true},
		{"node.role==worker", arm, true},
		{"node.platform.arch==arm64", arm, true},
		{"node.platform.arch==aarch64", arm, true},
		{"node.platform.arch!=arm64", arm, false},
		{"node.platform.arch==amd64", x86, true},
		{"node.platform.arch==x86_64", edge, true}, // edge reports amd64
		{"node.platform.arch==arm64", x86, false},
		{"node.platform.os==linux", x86, true},
		{"node.platform.os==windows", x86, false},
		{"node.platform.os!=windows", edge, true},
		{"node.labels.zone==edge", edge, true},
		{"node.labels.zone==Edge", edge, false}, // label values compare exactly
		{"node.labels.zone!=edge", edge, false},
		{"node.labels.zone!=core", edge, true},
		{"node.labels.zone==edge", arm, false}, // no such label
		{"node.labels.zone!=edge", arm, true},
		{"node.labels.ssd==true", edge, true},
	}
	for _, c := range cases {
		t.Run(c.expr+" on "+c.node.Id, func(t *testing.T) {
			cs, err := ParseConstraints([]string{c.expr})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := cs[0].Match(c.node); got != c.want {
				t.Fatalf("Match = %v, want %v", got, c.want)
			}
		})
	}
}

func TestParseConstraints(t *testing.T) {
	got, err := ParseConstraints([]string{" node.labels.zone == edge ", "node.role!=worker", "node.platform.arch==x86_64"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Constraint{
		{Key: "node.labels.zone", Op: OpEqual, Value: "edge"},
		{Key: "node.role", Op: OpNotEqual, Value: "worker"},
		{Key: "node.platform.arch", Op: OpEqual, Value: "x86_64"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %+v, want %+v", got, want)
	}
	if got[0].String() != "node.labels.zone==edge" {
		t.Fatalf("String() = %q", got[0].String())
	}
	if cs, err := ParseConstraints(nil); err != nil || len(cs) != 0 {
		t.Fatalf("no constraints: %v, %v", cs, err)
	}
}

func TestParseConstraintsErrors(t *testing.T) {
	cases := []struct {
		expr string
		want string
	}{
		{"node.role", "want KEY==VALUE or KEY!=VALUE"},
		{"node.role=manager", "want KEY==VALUE or KEY!=VALUE"},
		{"node.role>=manager", "want KEY==VALUE or KEY!=VALUE"},
		{"node.role==", "the value is empty"},
		{"node.role==  ", "the value is empty"},
		{"==manager", `unknown key ""`},
		{"node.zone==edge", `unknown key "node.zone"`},
		{"Node.Role==manager", `unknown key "Node.Role"`},
		{"engine.labels.x==y", `unknown key "engine.labels.x"`},
		{"node.labels.==edge", `label name "" is empty or has spaces`},
		{"node.labels.my zone==edge", `label name "my zone" is empty or has spaces`},
		{"node.role==boss", `role must be manager or worker, not "boss"`},
		{"node.role==manager==worker", `value "manager==worker" holds an "="`},
		{"node.role!==manager", `value "=manager" holds an "="`},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			_, err := ParseConstraints([]string{"node.role==worker", c.expr})
			if !errors.Is(err, ErrInvalidConstraint) {
				t.Fatalf("err = %v, want ErrInvalidConstraint", err)
			}
			if msg := err.Error(); !strings.Contains(msg, c.want) || !strings.Contains(msg, "\""+c.expr+"\"") {
				t.Fatalf("err = %q, want it to quote the constraint and say %q", msg, c.want)
			}
		})
	}
	// Every bad constraint is named, not only the first.
	_, err := ParseConstraints([]string{"a==b", "node.role==worker", "c"})
	if msg := err.Error(); !strings.Contains(msg, `"a==b"`) || !strings.Contains(msg, `"c"`) {
		t.Fatalf("err = %q, want both bad constraints named", msg)
	}
}
