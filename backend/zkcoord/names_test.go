package zkcoord

import (
	"fmt"
	"testing"
)

func TestContenderOrder(t *testing.T) {
	const g1, g2 = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	children := []string{
		"_c_" + g1 + "-lock-0000000012",
		"sub",                    // the node of a nested name "x/sub"
		"sub-lock-0000000001",    // a nested name that looks like a sequence
		"_c_XYZ-lock-0000000000", // not a GUID
		"_c_" + g2 + "-lock-0000000003",
		"_c_" + g2 + "-lock-00000x0003",
		"_c_" + g1 + "-lock-",
	}
	got := fmt.Sprint(contenders(children))
	want := fmt.Sprint([]string{"_c_" + g2 + "-lock-0000000003", "_c_" + g1 + "-lock-0000000012"})
	if got != want {
		t.Fatalf("contenders = %s, want %s", got, want)
	}
}
