package ctl

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestChooseCandidate(t *testing.T) {
	cands := []string{"n2", "n3"}
	cases := []struct {
		name, input string
		interactive bool
		want, err   string
	}{
		{"picks a listed candidate", "n3\n", true, "n3", ""},
		{"trims the answer", "  n2  \n", true, "n2", ""},
		{"empty answer lets the cluster choose", "\n", true, "", ""},
		{"answer without newline", "n2", true, "n2", ""},
		{"unknown answer", "n9\n", true, "", `"n9" is not one of the candidates (n2, n3)`},
		{"end of input", "", true, "", "end of input"},
		{"no terminal", "n2\n", false, "", "pass --candidate NAME, or --force"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &Prompter{In: strings.NewReader(tc.input), Out: &out, Interactive: tc.interactive}
			got, err := p.ChooseCandidate(cands)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			if !strings.Contains(out.String(), "Candidates: n2, n3") {
				t.Fatalf("candidates not shown: %q", out.String())
			}
		})
	}
	p := &Prompter{In: strings.NewReader("\n"), Out: &bytes.Buffer{}, Interactive: true}
	if _, err := p.ChooseCandidate(nil); err == nil {
		t.Fatal("empty candidate list accepted")
	}
}

func TestConfirm(t *testing.T) {
	cases := []struct {
		input       string
		interactive bool
		want        bool
		err         string
	}{
		{"y\n", true, true, ""},
		{"YES\n", true, true, ""},
		{"n\n", true, false, ""},
		{"\n", true, false, ""},
		{"maybe\n", true, false, ""},
		{"y\n", false, false, "standard input is not a terminal: pass --force"},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		p := &Prompter{In: strings.NewReader(tc.input), Out: &out, Interactive: tc.interactive}
		got, err := p.Confirm("Are you sure you want to restart members n1?")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "restart members n1") {
				t.Errorf("%q: err = %v, want %q", tc.input, err, tc.err)
			}
			if out.Len() != 0 {
				t.Errorf("prompt printed without a terminal: %q", out.String())
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %v, %v; want %v", tc.input, got, err, tc.want)
		}
		if out.String() != "Are you sure you want to restart members n1? [y/N]: " {
			t.Errorf("prompt %q", out.String())
		}
	}
	p := &Prompter{In: strings.NewReader("no\n"), Out: &bytes.Buffer{}, Interactive: true}
	if err := p.ConfirmOrAbort("Go?"); !errors.Is(err, ErrAborted) {
		t.Fatalf("ConfirmOrAbort(no) = %v", err)
	}
	// Two questions share one buffered reader.
	p = &Prompter{In: strings.NewReader("n2\ny\n"), Out: &bytes.Buffer{}, Interactive: true}
	if c, err := p.ChooseCandidate([]string{"n2"}); err != nil || c != "n2" {
		t.Fatalf("candidate %q %v", c, err)
	}
	if ok, err := p.Confirm("Go?"); !ok || err != nil {
		t.Fatalf("second question: %v %v", ok, err)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) || IsTerminal(nil) {
		t.Fatal("a regular file is not a terminal")
	}
}

func TestDevNullIsNotATerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Fatal("/dev/null taken for a terminal")
	}
}
