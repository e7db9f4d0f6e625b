package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// How settings work
//
// A setting is one configuration value. Every setting is a flag
// (--xqueue-url), an environment variable (CERTD_XQUEUE_URL) and a key in
// the optional YAML file (xqueue-url or xqueue_url); a flag beats the
// environment, which beats the file, which beats the default.
//
// Settings are grouped in parts (settings.go): one struct per piece of
// certd (XQueueSettings, BridgeSettings, ...), with typed fields. A part's
// declare method binds each field, once, to its name, default and help:
//
//	c.String(&s.Queue, "xqueue-queue", "certificates", "xqueue queue name")
//
// A command declares the parts it runs (newConfig) and, after parse, reads
// the fields. Code never names a setting by a string to read it, so a
// mistyped setting is a compile error. Invariants:
//   - every name is declared once, in one part; the `all` command declares
//     every part, so allParts is the catalog of every setting;
//   - a default is written as text (as in --help and deploy/certd.yaml) and
//     is parsed by the field's kind when declared: a bad default panics on
//     the first test that declares its part;
//   - every bad value is collected (bad) and reported at once (err);
//   - a secret has no default and its value is never printed.

// setting is what certd knows about one setting.
type setting struct {
	name, def, help string
	secret          bool
}

// binding ties a setting to the field a command reads.
type binding struct {
	setting
	field any                     // the pointer the part declared
	flag  *string                 // the flag's text, when the flag was given
	set   func(raw string) string // parse raw into the field; "" or why it is bad
}

// part is a group of settings read by one piece of certd.
type part interface{ declare(c *config) }

// removedSettings are settings certd no longer has, with why; setting one
// is refused so that an operator notices.
var removedSettings = map[string]string{
	"pull-concurrency": "removed: parallel get_submission calls make xqueue hand one submission out twice (duplicate LMS callbacks); " +
		"certd now pulls one submission at a time per queue across all bridges (see intake-lock-ttl). Delete this setting",
}

// catalog is every setting certd has, by name: the settings of `all`,
// which runs every part.
var catalog = sync.OnceValue(func() map[string]setting {
	c := &config{}
	c.add(&allParts{})
	out := make(map[string]setting, len(c.list))
	for _, b := range c.list {
		out[b.name] = b.setting
	}
	return out
})

// config is the resolved configuration of one command.
type config struct {
	fs     *flag.FlagSet
	list   []*binding
	byName map[string]*binding
	byPtr  map[any]*binding
	file   map[string]string
	errs   []string
}

// newConfig declares the settings of the given parts as flags of a
// command; help and flag errors go to out. A part is a value with a
// declare method, or a pointer to a struct whose fields are parts.
func newConfig(cmd string, out io.Writer, parts ...any) *config {
	c := &config{fs: flag.NewFlagSet("certd "+cmd, flag.ContinueOnError)}
	c.fs.SetOutput(out)
	c.fs.String("config", "", "YAML file with settings (keys as the flag names)")
	for _, p := range parts {
		c.add(p)
	}
	c.fs.Usage = func() {
		fmt.Fprintf(c.fs.Output(), "Usage of certd %s:\n", cmd)
		c.fs.PrintDefaults()
	}
	return c
}

// add declares p: a part, or every field of a struct that is a part.
func (c *config) add(p any) {
	if pt, ok := p.(part); ok {
		pt.declare(c)
		return
	}
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("settings: %T is neither a part nor a pointer to a struct of parts", p))
	}
	v = v.Elem()
	for i := range v.NumField() {
		f, ok := v.Field(i).Addr().Interface().(part)
		if !ok {
			panic(fmt.Sprintf("settings: field %s of %s is not a part", v.Type().Field(i).Name, v.Type()))
		}
		f.declare(c)
	}
}

// bind registers one setting; the typed methods below call it.
func (c *config) bind(field any, name, def, help string, secret bool, set func(string) string) {
	if c.byName == nil {
		c.byName, c.byPtr = map[string]*binding{}, map[any]*binding{}
	}
	if _, dup := c.byName[name]; dup {
		panic("settings: " + name + " declared twice")
	}
	if _, dup := c.byPtr[field]; dup {
		panic("settings: the field of " + name + " is bound twice")
	}
	if why := set(def); why != "" {
		panic("settings: bad default of " + name + ": " + why)
	}
	b := &binding{setting: setting{name: name, def: def, help: help, secret: secret}, field: field, set: set}
	if c.fs != nil {
		b.flag = c.fs.String(name, "", help+" [$"+envName(name)+"]")
		if def != "" {
			c.fs.Lookup(name).DefValue = def
		}
	}
	c.list = append(c.list, b)
	c.byName[name], c.byPtr[field] = b, b
}

// setDefault replaces the default of a declared setting, before parse: a
// command whose defaults differ from certd's (bench).
func (c *config) setDefault(name, def string) {
	b := c.byName[name]
	if b == nil {
		panic("settings: " + name + " is not declared")
	}
	if why := b.set(def); why != "" {
		panic("settings: bad default of " + name + ": " + why)
	}
	b.def = def
	if f := c.fs.Lookup(name); f != nil {
		f.DefValue = def
	}
}

// String declares a text setting.
func (c *config) String(p *string, name, def, help string) {
	c.bind(p, name, def, help, false, func(s string) string { *p = s; return "" })
}

// Secret declares a text setting that is never printed and has no default.
func (c *config) Secret(p *string, name, help string) {
	c.bind(p, name, "", help, true, func(s string) string { *p = s; return "" })
}

// Int declares a whole number.
func (c *config) Int(p *int, name, def, help string) {
	c.bind(p, name, def, help, false, func(s string) string {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		*p = v
		if err != nil {
			return fmt.Sprintf("%q is not a whole number", s)
		}
		return ""
	})
}

// Duration declares a duration that is not negative.
func (c *config) Duration(p *time.Duration, name, def, help string) {
	c.bind(p, name, def, help, false, func(s string) string {
		v, err := time.ParseDuration(strings.TrimSpace(s))
		*p = v
		if err != nil || v < 0 {
			return fmt.Sprintf("%q is not a duration like 30s or 5m", s)
		}
		return ""
	})
}

// Bool declares true or false.
func (c *config) Bool(p *bool, name, def, help string) {
	c.bind(p, name, def, help, false, func(s string) string {
		v, err := strconv.ParseBool(strings.TrimSpace(s))
		*p = v
		if err != nil {
			return fmt.Sprintf("%q is not true or false", s)
		}
		return ""
	})
}

func envName(n string) string { return "CERTD_" + strings.ToUpper(strings.ReplaceAll(n, "-", "_")) }

// parse reads flags, the environment and the YAML file into the declared
// fields. A value of the wrong kind is recorded as bad (see err).
func (c *config) parse(args []string) error {
	if err := c.fs.Parse(args); err != nil {
		return err
	}
	if c.fs.NArg() > 0 {
		// A name with a space passed unquoted would otherwise be cut short
		// without a word.
		return fmt.Errorf("unexpected argument %q (quote values with spaces)", c.fs.Arg(0))
	}
	for n, why := range removedSettings {
		if _, ok := os.LookupEnv(envName(n)); ok {
			return fmt.Errorf("%s: %s", envName(n), why)
		}
	}
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	path := c.fs.Lookup("config").Value.String()
	if path == "" {
		path = os.Getenv("CERTD_CONFIG")
	}
	if path != "" {
		m, err := readYAML(path)
		if err != nil {
			return err
		}
		c.file = m
	}
	for _, b := range c.list {
		var v string
		switch env, inEnv := os.LookupEnv(envName(b.name)); {
		case set[b.name]:
			v = *b.flag
		case inEnv:
			v = env
		case c.file[b.name] != "":
			v = c.file[b.name]
		default:
			v = b.def
		}
		if why := b.set(v); why != "" {
			c.badName(b.name, "%s", why)
		}
	}
	return nil
}

func readYAML(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	known := catalog()
	out := map[string]string{}
	var unknown []string
	for k, v := range raw {
		name := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		name = strings.TrimPrefix(name, "certd-")
		if why, ok := removedSettings[name]; ok {
			return nil, fmt.Errorf("config file %s: %s: %s", path, k, why)
		}
		if _, ok := known[name]; !ok {
			unknown = append(unknown, k)
			continue
		}
		switch v.(type) {
		case nil:
			continue // `key:` without a value: not set
		case map[string]any, []any:
			return nil, fmt.Errorf("config file %s: %s: want a single value, not a list or map", path, k)
		}
		out[name] = fmt.Sprint(v)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config file %s: unknown settings: %s", path, strings.Join(unknown, ", "))
	}
	return out, nil
}

// bad records that the setting bound to field (a pointer a part declared)
// has a bad value; err reports it with the others.
func (c *config) bad(field any, format string, args ...any) {
	b, ok := c.byPtr[field]
	if !ok {
		panic(fmt.Sprintf("settings: a %T that this command did not declare", field))
	}
	c.badName(b.name, format, args...)
}

func (c *config) badName(n, format string, args ...any) {
	msg := fmt.Sprintf("%s (--%s / %s): %s", n, n, envName(n), fmt.Sprintf(format, args...))
	if !slices.Contains(c.errs, msg) {
		c.errs = append(c.errs, msg)
	}
}

// require records the setting bound to p as bad when it is empty.
func (c *config) require(p *string) string {
	if *p == "" {
		c.bad(p, "required")
	}
	return *p
}

// err reports every bad setting at once.
func (c *config) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return errors.New("bad settings:\n  " + strings.Join(c.errs, "\n  "))
}

// localStorage returns the directory dir (made if missing) as an absolute
// file:// URL, the default of the storage setting.
func localStorage(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", err
	}
	return fileURL(abs), nil
}
