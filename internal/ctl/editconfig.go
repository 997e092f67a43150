package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// ShowConfig prints the dynamic configuration as YAML.
func (s *Session) ShowConfig(ctx context.Context) error {
	c, err := s.view(ctx)
	if err != nil {
		return err
	}
	doc, err := ConfigMap(c.Config)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Scope, err)
	}
	y, err := RenderYAML(doc)
	if err != nil {
		return err
	}
	_, err = io.WriteString(s.out(), y)
	return err
}

// EditConfigOptions are the flags of `regent edit-config`.
type EditConfigOptions struct {
	// Set are "dotted.key=value" settings; the value is a YAML scalar and
	// "null" deletes the key.
	Set []string
	// PGParams are "name=value" settings of postgresql.parameters.
	PGParams []string
	// Apply is a YAML/JSON file ("-" for standard input) merged into the
	// configuration as a merge patch.
	Apply string
	// Replace is a YAML/JSON file ("-" for standard input) that replaces
	// the whole configuration (PUT /config).
	Replace string
	// Force skips the confirmation.
	Force bool
	// Editor is the command that edits a file when no change is given
	// (default "vi").
	Editor string
}

func (o EditConfigOptions) hasChanges() bool {
	return len(o.Set) > 0 || len(o.PGParams) > 0 || o.Apply != "" || o.Replace != ""
}

// ErrNothingToChange is returned by edit-config without changes and
// without a terminal to start an editor in.
var ErrNothingToChange = errors.New("nothing to change: use -s/-p/--apply/--replace, or run in a terminal to edit")

// BuildConfig applies the options' changes to a copy of old and returns the
// new document; replace says the whole document replaces the old one (PUT)
// rather than being sent as a merge patch. readFile reads --apply and
// --replace files ("-" is passed through for standard input).
func BuildConfig(old map[string]any, o EditConfigOptions, readFile func(string) ([]byte, error)) (doc map[string]any, replace bool, err error) {
	if o.Apply != "" && o.Replace != "" {
		return nil, false, errors.New("--apply and --replace cannot be combined")
	}
	doc = CloneDoc(old)
	if o.Replace != "" {
		b, err := readFile(o.Replace)
		if err != nil {
			return nil, false, err
		}
		if doc, err = ParseDocument(b); err != nil {
			return nil, false, fmt.Errorf("%s: %w", fileLabel(o.Replace), err)
		}
		if len(doc) == 0 {
			return nil, false, fmt.Errorf("%s: the document is empty; refusing to replace the configuration with nothing", fileLabel(o.Replace))
		}
		dropNulls(doc)
		replace = true
	}
	if o.Apply != "" {
		b, err := readFile(o.Apply)
		if err != nil {
			return nil, false, err
		}
		patch, err := ParseDocument(b)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", fileLabel(o.Apply), err)
		}
		ApplyMergePatch(doc, patch)
	}
	for _, arg := range o.Set {
		path, v, err := ParseAssignment(arg)
		if err != nil {
			return nil, false, err
		}
		if err := SetPath(doc, path, v); err != nil {
			return nil, false, err
		}
	}
	for _, arg := range o.PGParams {
		path, v, err := ParseParameter(arg)
		if err != nil {
			return nil, false, err
		}
		if err := SetPath(doc, path, v); err != nil {
			return nil, false, err
		}
	}
	stringifyParameters(doc, old)
	return doc, replace, nil
}

func fileLabel(name string) string {
	if name == "-" {
		return "standard input"
	}
	return name
}

// EditConfig changes the dynamic configuration: it builds the new document
// from the options (or the operator's editor), shows a diff, asks for
// confirmation and sends PATCH /config as a merge patch pinned to the
// revision it read (If-Match), or PUT /config for --replace.
func (s *Session) EditConfig(ctx context.Context, o EditConfigOptions) error {
	c, err := s.view(ctx)
	if err != nil {
		return err
	}
	old, err := ConfigMap(c.Config)
	switch {
	case c.Config == nil && c.ConfigProblem != "":
		// Not even a JSON object: nothing to show or patch, but a whole
		// configuration can still replace it.
		if o.Replace == "" {
			return fmt.Errorf("cluster %s: %s; write a whole configuration with --replace", c.Scope, c.ConfigProblem)
		}
		old = map[string]any{}
	case err != nil:
		return fmt.Errorf("cluster %s: %w", c.Scope, err)
	case c.ConfigProblem != "":
		fmt.Fprintf(s.out(), "Warning: %s\n", c.ConfigProblem)
	}
	oldYAML, err := RenderYAML(old)
	if err != nil {
		return err
	}
	var doc map[string]any
	replace := false
	if o.hasChanges() {
		doc, replace, err = BuildConfig(old, o, s.readFile)
		if err != nil {
			return err
		}
	} else {
		if !s.EditorOK {
			return ErrNothingToChange
		}
		header := fmt.Sprintf("# Dynamic configuration of cluster %s. Save and quit to continue;\n# an unchanged or empty file changes nothing.\n", c.Scope)
		edited, err := RunEditor(o.Editor, header+oldYAML)
		if err != nil {
			return err
		}
		if doc, err = ParseDocument([]byte(edited)); err != nil {
			return fmt.Errorf("edited configuration: %w; nothing was changed", err)
		}
		if len(doc) == 0 {
			fmt.Fprintln(s.out(), "Not changed")
			return nil
		}
		dropNulls(doc)
		stringifyParameters(doc, old)
	}
	if Equal(old, doc) {
		fmt.Fprintln(s.out(), "Not changed")
		return nil
	}
	if err := ConfigCheck(doc); err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	newYAML, err := RenderYAML(doc)
	if err != nil {
		return err
	}
	fmt.Fprint(s.out(), UnifiedDiff(oldYAML, newYAML, "current", "new"))
	if !o.Force {
		if err := s.prompt().ConfirmOrAbort("Apply these changes?"); err != nil {
			return err
		}
	}
	method, body := http.MethodPatch, any(MergePatch(old, doc))
	var header http.Header
	if replace {
		method, body = http.MethodPut, doc
	} else {
		header = http.Header{"If-Match": {strconv.FormatInt(c.ConfigRevision, 10)}}
	}
	m, status, resp, err := s.sendToAny(ctx, orderedMembers(c, c.LeaderName()), method, "/config", body, header)
	if err != nil {
		return err
	}
	switch status {
	case http.StatusOK:
		fmt.Fprintln(s.out(), "Configuration changed")
		return nil
	case http.StatusConflict, http.StatusPreconditionFailed:
		return errors.New("configuration was changed by someone else in the meantime; run again")
	}
	return s.api().NewAPIError(method, m.APIURL, "/config", status, resp)
}

// readFile reads a file, or standard input for "-".
func (s *Session) readFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(s.stdin())
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	return b, nil
}

// RunEditor writes text to a temporary YAML file, runs the editor on it
// (through sh, like git, so "code --wait" works) on the process's terminal,
// and returns the edited text. The editor defaults to vi.
func RunEditor(editor, text string) (string, error) {
	if strings.TrimSpace(editor) == "" {
		editor = "vi"
	}
	f, err := os.CreateTemp("", "regent-config-*.yaml")
	if err != nil {
		return "", err
	}
	path := f.Name()
	defer os.Remove(path)
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	cmd := exec.Command("sh", "-c", editor+` "$1"`, "regent-editor", path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("editor %q failed: %w; nothing was changed", editor, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
