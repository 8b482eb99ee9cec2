package spec

import (
	"errors"
	"testing"

	"github.com/warren-project/warren/api"
)

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1024", 1024, false},
		{"512M", 512 << 20, false},
		{"512m", 512 << 20, false},
		{"1g", 1 << 30, false},
		{"1G", 1 << 30, false},
		{"1.5GiB", 3 << 29, false},
		{"256MB", 256 << 20, false},
		{"100k", 100 << 10, false},
		{"10b", 10, false},
		{"2 GiB", 2 << 30, false},
		{"0", 0, false},
		{"1t", 1 << 40, false},
		{"", 0, true},
		{"-1", 0, true},
		{"abc", 0, true},
		{"1x", 0, true},
		{"1.2.3m", 0, true},
		{"9999999p", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMemory(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParseMemory(%q) = %d, %v; want an ErrInvalid error", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseMemory(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseCPU(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0.5", 5e8, false},
		{"2", 2e9, false},
		{"0.001", 1e6, false},
		{"1.000000001", 1e9 + 1, false},
		{"0", 0, false},
		{"", 0, true},
		{"-1", 0, true},
		{"0.0000000001", 0, true},
		{"1e3", 0, true},
		{"half", 0, true},
		{"99999999999", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCPU(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParseCPU(%q) = %d, %v; want an ErrInvalid error", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseCPU(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatMemory(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0B"},
		{1000, "1000B"},
		{1024, "1KiB"},
		{512 << 20, "512MiB"},
		{3 << 29, "1.5GiB"},
		{1<<30 + 1<<20, "1GiB"},
		{-2048, "-2KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatMemory(tt.in); got != tt.want {
				t.Fatalf("FormatMemory(%d) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatMemoryRoundTrips(t *testing.T) {
	for _, b := range []int64{0, 1, 1023, 1 << 20, 5 << 30, 3 << 29} {
		t.Run(FormatMemory(b), func(t *testing.T) {
			got, err := ParseMemory(FormatMemory(b))
			if err != nil || got != b {
				t.Fatalf("ParseMemory(FormatMemory(%d)) = %d, %v", b, got, err)
			}
		})
	}
}

func TestFormatCPU(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{5e8, "0.5"},
		{2e9, "2"},
		{1e6, "0.001"},
		{1e9 + 1, "1.000000001"},
		{-25e7, "-0.25"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatCPU(tt.in); got != tt.want {
				t.Fatalf("FormatCPU(%d) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.in >= 0 {
				if back, err := ParseCPU(tt.want); err != nil || back != tt.in {
					t.Fatalf("ParseCPU(%q) = %d, %v; want %d", tt.want, back, err, tt.in)
				}
			}
		})
	}
}

func TestRestartCondition(t *testing.T) {
	tests := []struct {
		in      string
		want    api.RestartPolicy_Condition
		wantErr bool
	}{
		{"any", api.RestartPolicy_CONDITION_ANY, false},
		{"on-failure", api.RestartPolicy_CONDITION_ON_FAILURE, false},
		{"NONE", api.RestartPolicy_CONDITION_NONE, false},
		{"always", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRestartCondition(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseRestartCondition(%q) = %v, %v", tt.in, got, err)
			}
			if err == nil && tt.in != "NONE" && FormatRestartCondition(got) != tt.in {
				t.Fatalf("FormatRestartCondition(%v) = %q, want %q", got, FormatRestartCondition(got), tt.in)
			}
		})
	}
}
