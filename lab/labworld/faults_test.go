package labworld

import (
	"bytes"
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// `up` hands the fault flags to the serve process it starts, and refuses a share out of range
// before starting anything.
func TestUpFaultFlags(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f serveFlags
	f.register(fs)
	if err := fs.Parse([]string{"--linode-fault-rate", "0.2", "--linode-rate-limit", "600", "--linode-rate-limits=false"}); err != nil {
		t.Fatal(err)
	}
	if f.rateLimits {
		t.Error("--linode-rate-limits=false left the documented limits on")
	}
	args := f.args()
	for _, want := range [][]string{{"--linode-fault-rate", "0.2"}, {"--linode-rate-limit", "600"}} {
		i := slices.Index(args, want[0])
		if i < 0 || i+1 >= len(args) || args[i+1] != want[1] {
			t.Errorf("serve args %q lack %s %s", args, want[0], want[1])
		}
	}
	var again serveFlags
	fs2 := flag.NewFlagSet("serve", flag.ContinueOnError)
	again.register(fs2)
	if err := fs2.Parse(args); err != nil || again != f {
		t.Errorf("serve parses its args as %+v (%v), want %+v", again, err, f)
	}

	var out bytes.Buffer
	code := cli{exe: "/nonexistent"}.run(context.Background(), []string{"up", "--linode-fault-rate", "1.5"}, &out, &out)
	if code == 0 || !strings.Contains(out.String(), "want a share from 0 to 1") {
		t.Errorf("up --linode-fault-rate 1.5: exit %d, %q", code, out.String())
	}
}
