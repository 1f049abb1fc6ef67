package main

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fleet file is -f/--file or the one positional argument, before or after the flags.
func TestParseArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		cmd     string
		file    string
		check   func(o options) bool // more of the options, when set
		wantErr string               // in stderr; "" means success
	}{
		{name: "default", args: nil, file: "fleet.yaml"},
		{name: "positional", args: []string{"validate", "a.yaml"}, cmd: "validate", file: "a.yaml"},
		{name: "short flag", args: []string{"validate", "-f", "a.yaml"}, cmd: "validate", file: "a.yaml"},
		{name: "long flag", args: []string{"plan", "--file=a.yaml"}, cmd: "plan", file: "a.yaml"},
		{name: "flag and positional equal", args: []string{"apply", "-f", "a.yaml", "a.yaml"}, cmd: "apply", file: "a.yaml"},
		{name: "flag and positional equal once cleaned", args: []string{"apply", "./dir/a.yaml", "--file", "dir//a.yaml"}, cmd: "apply", file: "./dir/a.yaml"},
		{name: "flag and positional differ", args: []string{"validate", "-f", "a.yaml", "b.yaml"}, wantErr: `two fleet files: -f "a.yaml" and the argument "b.yaml"`},
		{name: "positional then different flag", args: []string{"validate", "b.yaml", "--file", "a.yaml"}, wantErr: "two fleet files"},
		{name: "default name given as positional is no conflict", args: []string{"validate", "fleet.yaml"}, cmd: "validate", file: "fleet.yaml"},
		{name: "two positionals", args: []string{"validate", "a.yaml", "b.yaml"}, wantErr: `one fleet file expected, got 2 arguments: "a.yaml" "b.yaml"`},
		{name: "two positionals around flags", args: []string{"plan", "a.yaml", "-o", "json", "b.yaml"}, wantErr: "got 2 arguments"},
		{
			name: "flags after the positional", args: []string{"validate", "a.yaml", "--once", "--log-level", "debug"}, cmd: "validate", file: "a.yaml",
			check: func(o options) bool { return o.once && o.logLevel == "debug" },
		},
		{
			name: "flags on both sides", args: []string{"plan", "--target", "cluster", "a.yaml", "-o", "json", "--target", "member/eu"}, cmd: "plan", file: "a.yaml",
			check: func(o options) bool {
				return o.output == "json" && reflect.DeepEqual([]string(o.targets), []string{"cluster", "member/eu"})
			},
		},
		{
			name: "once with positional", args: []string{"--once", "a.yaml", "--dry-run"}, file: "a.yaml",
			check: func(o options) bool { return o.once && o.dryRun },
		},
		{
			name: "daemon with positional", args: []string{"a.yaml", "--resync-interval", "1m"}, file: "a.yaml",
			check: func(o options) bool { return !o.once && o.resync == time.Minute },
		},
		{name: "daemon with a path", args: []string{"dir/fleet"}, file: "dir/fleet"},
		{name: "after -- nothing is a flag", args: []string{"validate", "--", "-a.yaml"}, cmd: "validate", file: "-a.yaml"},
		{name: "two positionals after --", args: []string{"validate", "a.yaml", "--", "--once"}, wantErr: "got 2 arguments"},
		{name: "unknown flag after the positional", args: []string{"validate", "a.yaml", "--frobnicate"}, wantErr: "flag provided but not defined"},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: `unknown command "frobnicate"`},
		{name: "the lab is not reconcile's", args: []string{"lab", "up"}, wantErr: `unknown command "lab"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errb strings.Builder
			cmd, o, err := parseArgs(tc.args, &errb)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(errb.String(), tc.wantErr) {
					t.Fatalf("%q: err %v, stderr %q; want an error saying %q", tc.args, err, errb.String(), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v\n%s", tc.args, err, errb.String())
			}
			if cmd != tc.cmd || o.file != tc.file {
				t.Errorf("%q: command %q, file %q; want %q, %q", tc.args, cmd, o.file, tc.cmd, tc.file)
			}
			if tc.check != nil && !tc.check(o) {
				t.Errorf("%q: options %+v", tc.args, o)
			}
		})
	}
}

func TestParseArgsHelp(t *testing.T) {
	t.Parallel()
	if _, _, err := parseArgs([]string{"validate", "a.yaml", "-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h after the file: %v, want flag.ErrHelp", err)
	}
}

// The command lines the documentation shows for validate work as written (from the repository's
// root, here ../..). plan and apply with a positional file run in TestCLILinodeLayerAgainstLabAPI.
func TestDocumentedValidateCommandLines(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"validate", "../../examples/regions/fleet.yaml"}, // examples/regions/fleet.yaml's header
		{"validate", "-f", "../../examples/regions/fleet.yaml"},
		{"validate", "../../examples/lab/fleet.yaml", "--log-level", "warn"},
		{"validate", "--file", "../../examples/existing/fleet.yaml", "../../examples/existing/fleet.yaml"},
	} {
		if code, out, errs := runCLI(t, args...); code != 0 || !strings.Contains(out, "is valid") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}
