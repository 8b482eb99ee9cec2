package spec

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/warren-project/warren/api"
)

// Memory sizes are binary, as in Docker: "1g" is 1024³ bytes.
var memoryUnits = map[string]int64{
	"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50,
}

var memoryRE = regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kmgtp]?)(?:i?b)?$`)

// ParseMemory reads a size such as "512M", "1g", "1.5GiB" or "1024" (bytes).
func ParseMemory(s string) (int64, error) {
	m := memoryRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, invalid("memory", "invalid memory size %q: write a number with an optional unit, such as 512M, 1.5G or 1048576", s)
	}
	n, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, invalid("memory", "invalid memory size %q: %q is not a number", s, m[1])
	}
	n.Mul(n, new(big.Rat).SetInt64(memoryUnits[m[2]]))
	// A fraction of a byte is dropped, as Docker does.
	b := new(big.Int).Quo(n.Num(), n.Denom())
	if !b.IsInt64() {
		return 0, invalid("memory", "memory size %q is too large", s)
	}
	return b.Int64(), nil
}

var cpuRE = regexp.MustCompile(`^\d+(?:\.\d+)?$`)

// ParseCPU reads a CPU count such as "0.5" or "2" into nano-CPUs.
func ParseCPU(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if !cpuRE.MatchString(t) {
		return 0, invalid("cpu", "invalid CPU amount %q: write a number of CPUs, such as 0.5 or 2", s)
	}
	n, _ := new(big.Rat).SetString(t) // cannot fail: the regexp admits decimals only
	n.Mul(n, big.NewRat(1e9, 1))
	if !n.IsInt() {
		return 0, invalid("cpu", "invalid CPU amount %q: at most 9 decimal places", s)
	}
	if !n.Num().IsInt64() {
		return 0, invalid("cpu", "CPU amount %q is too large", s)
	}
	return n.Num().Int64(), nil
}

var memoryNames = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// FormatMemory writes a size for people: "512MiB", "1.5GiB". ParseMemory
// reads it back (to within the rounding of the decimals shown).
func FormatMemory(b int64) string {
	if b < 0 {
		return "-" + FormatMemory(-max(b, -math.MaxInt64))
	}
	v, i := float64(b), 0
	for v >= 1024 && i < len(memoryNames)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(roundTo(v, 2), 'f', -1, 64) + memoryNames[i]
}

func roundTo(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}

// FormatCPU writes nano-CPUs as a CPU count: 500000000 is "0.5".
func FormatCPU(nano int64) string {
	sign := ""
	if nano < 0 {
		sign, nano = "-", -nano
	}
	whole, frac := nano/1e9, nano%1e9
	if frac == 0 {
		return sign + strconv.FormatInt(whole, 10)
	}
	return sign + strings.TrimRight(fmt.Sprintf("%d.%09d", whole, frac), "0")
}

// ParseRestartCondition reads "any", "on-failure" or "none".
func ParseRestartCondition(s string) (api.RestartPolicy_Condition, error) {
	switch strings.ToLower(s) {
	case "any", "":
		return api.RestartPolicy_CONDITION_ANY, nil
	case "on-failure":
		return api.RestartPolicy_CONDITION_ON_FAILURE, nil
	case "none":
		return api.RestartPolicy_CONDITION_NONE, nil
	}
	return 0, invalid("task.restart.condition", "invalid restart condition %q: use any, on-failure or none", s)
}

// FormatRestartCondition is the inverse of ParseRestartCondition.
func FormatRestartCondition(c api.RestartPolicy_Condition) string {
	switch c {
	case api.RestartPolicy_CONDITION_ON_FAILURE:
		return "on-failure"
	case api.RestartPolicy_CONDITION_NONE:
		return "none"
	}
	return "any"
}
