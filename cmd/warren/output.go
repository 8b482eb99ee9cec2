package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// format is the value of a --format flag: "" (the default view), "json",
// or a Go template when it starts with "{{".
type format string

func (f format) check() error {
	if f == "" || f == "json" || f.isTemplate() {
		return nil
	}
	return fmt.Errorf(`invalid --format %q: use json, or a Go template such as '{{.ID}}'`, string(f))
}

func (f format) isTemplate() bool { return strings.HasPrefix(strings.TrimSpace(string(f)), "{{") }

// toJSON encodes API objects with protojson (their documented JSON names),
// slices of them as arrays, and anything else with encoding/json.
func toJSON(v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case proto.Message:
		return protojson.MarshalOptions{EmitUnpopulated: false}.Marshal(x)
	case []proto.Message:
		items := make([]json.RawMessage, 0, len(x))
		for _, m := range x {
			b, err := toJSON(m)
			if err != nil {
				return nil, err
			}
			items = append(items, b)
		}
		return json.Marshal(items)
	}
	return json.Marshal(v)
}

// writeJSON writes v indented. Indenting again after protojson also makes
// the output stable: protojson varies its whitespace on purpose.
func writeJSON(w io.Writer, v any) error {
	raw, err := toJSON(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "    "); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		raw, err := toJSON(v)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = json.Compact(&buf, raw)
		return buf.String(), err
	},
	"join":  strings.Join,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
}

// writeTemplate executes the template once per item, a line each.
func writeTemplate(w io.Writer, f format, items []any) error {
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(string(f))
	if err != nil {
		return fmt.Errorf("invalid --format template: %w", err)
	}
	for _, it := range items {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, it); err != nil {
			return fmt.Errorf("--format template: %w", err)
		}
		buf.WriteByte('\n')
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// listing is one list command's output in its three forms.
type listing struct {
	header  []string
	rows    [][]string
	items   []any           // one per row, for templates
	objects []proto.Message // the API objects, for json
}

func (l *listing) add(item any, obj proto.Message, cells ...string) {
	l.items = append(l.items, item)
	l.objects = append(l.objects, obj)
	l.rows = append(l.rows, cells)
}

func writeListing(w io.Writer, f format, l listing) error {
	switch {
	case f == "json":
		return writeJSON(w, l.objects)
	case f.isTemplate():
		return writeTemplate(w, f, l.items)
	}
	return writeTable(w, l.header, l.rows)
}

func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// writeObjects prints inspected objects: a pretty JSON array by default or
// with json (as docker inspect does), else the template per object.
func writeObjects(w io.Writer, f format, objs []proto.Message) error {
	if f.isTemplate() {
		items := make([]any, len(objs))
		for i, o := range objs {
			items[i] = o
		}
		return writeTemplate(w, f, items)
	}
	return writeJSON(w, objs)
}
