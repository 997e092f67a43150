package ctl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// ErrAborted is returned when the operator answers no to a confirmation.
var ErrAborted = errors.New("aborted: nothing was changed")

// Prompter asks the operator questions. Interactive says whether In is a
// terminal; without one, every question fails with a message naming the
// flag that skips it, so scripts never block on a prompt.
type Prompter struct {
	In          io.Reader
	Out         io.Writer
	Interactive bool

	rd *bufio.Reader
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	return f != nil && isTerminal(f)
}

// readLine reads one answer line, trimmed.
func (p *Prompter) readLine() (string, error) {
	if p.rd == nil {
		in := p.In
		if in == nil {
			in = strings.NewReader("")
		}
		p.rd = bufio.NewReader(in)
	}
	line, err := p.rd.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no answer: end of input")
		}
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// Confirm asks a yes/no question (default no). Without a terminal it fails
// and tells the operator to pass --force.
func (p *Prompter) Confirm(question string) (bool, error) {
	if !p.Interactive {
		return false, fmt.Errorf("confirmation needed (%s) but standard input is not a terminal: pass --force to proceed without asking", strings.TrimSuffix(question, "?"))
	}
	fmt.Fprintf(p.Out, "%s [y/N]: ", question)
	ans, err := p.readLine()
	if err != nil {
		return false, err
	}
	switch strings.ToLower(ans) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// ConfirmOrAbort is Confirm that turns a "no" into ErrAborted.
func (p *Prompter) ConfirmOrAbort(question string) error {
	ok, err := p.Confirm(question)
	if err != nil {
		return err
	}
	if !ok {
		return ErrAborted
	}
	return nil
}

// ChooseCandidate shows the switchover candidates and asks for one. An
// empty answer returns "" (let the cluster pick the best candidate); an
// answer not in the list is an error. Without a terminal it fails and
// names --candidate and --force.
func (p *Prompter) ChooseCandidate(candidates []string) (string, error) {
	if !p.Interactive {
		return "", errors.New("no candidate given and standard input is not a terminal: pass --candidate NAME, or --force to let the cluster choose the best candidate")
	}
	if len(candidates) == 0 {
		return "", errors.New("no switchover candidates: the cluster has no other member that may be promoted")
	}
	fmt.Fprintf(p.Out, "Candidates: %s\n", strings.Join(candidates, ", "))
	fmt.Fprint(p.Out, "Candidate (empty: the healthiest one) []: ")
	ans, err := p.readLine()
	if err != nil {
		return "", err
	}
	if ans == "" {
		return "", nil
	}
	if !slices.Contains(candidates, ans) {
		return "", fmt.Errorf("%q is not one of the candidates (%s)", ans, strings.Join(candidates, ", "))
	}
	return ans, nil
}
