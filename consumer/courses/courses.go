// Package courses holds certd's per-course settings: the long organisation
// and course names, the issue date policy, which design to use, what
// certificates are called, per-grade texts and whether to sign.
//
// Settings come from the old certificate agent's cert-data.yml (read as is,
// so operators can point certd at their existing file) layered over
// organisation and site-wide defaults.
package courses

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// Settings is what certd needs to know about one course.
type Settings struct {
	// LongOrg is the organisation's full name (LONG_ORG, else CERT_ORGS_LONG
	// for the course's organisation, else the site's default organisation,
	// else the organisation's short name).
	LongOrg string
	// LongCourse is LONG_COURSE, the course's full title, or "" when not
	// set. The old agent preferred the job's course_name over it.
	LongCourse string
	// IssuedDate is ISSUED_DATE: "ROLLING" (the day of issue), "" (same) or a
	// fixed date. Use IssueDate or DateText to turn it into a date.
	IssuedDate string
	// Template names the design: TEMPLATEFILE if set, else VERSION.
	Template string
	// Version and TemplateFile are the raw VERSION and TEMPLATEFILE values.
	Version, TemplateFile string
	// CertsAreCalled and CertsAreCalledPlural are the words used for a
	// certificate ("Certificate", "Statement of Accomplishment", ...).
	CertsAreCalled, CertsAreCalledPlural string
	// AssociationText is COURSE_ASSOCIATION_TEXT ("a course of study offered by").
	AssociationText string
	// Interstitial maps a grade ("Pass", "Distinction") to the text printed
	// for it. Look it up with GradeText.
	Interstitial map[string]string
	// Verify is false when the course wants no signature and no
	// verification pages (VERIFY: false).
	Verify bool
	// Credential is false when the course wants no Open Badges credential
	// (CREDENTIAL: false); VERIFY: false turns credentials off too.
	Credential bool
	// OrgURL is ORG_URL, the organisation's web site (the credential
	// issuer's url); "" when not set.
	OrgURL string
	// Description and Criteria are COURSE_DESCRIPTION and CRITERIA: the
	// credential's achievement description and criteria narrative ("" when
	// not set; the handler supplies a sentence).
	Description, Criteria string
	// ValidFor is VALID_FOR: how long a certificate is valid from its issue
	// date (its credential's validUntil); 0: it does not expire. Written
	// as 365d, 2y or a Go duration such as 8760h.
	ValidFor time.Duration
	// HanStyle is HAN_STYLE (ja, zh-Hans, zh-Hant or ko): the style of Han
	// characters in names with neither kana nor Hangul; "" leaves it to
	// the han-style setting.
	HanStyle string
}

// Defaults used when neither the course, its organisation nor the site says otherwise.
const (
	DefaultCertsAreCalled       = "Certificate"
	DefaultCertsAreCalledPlural = "Certificates"
	DefaultAssociationText      = "a course of study offered by"
)

// GradeText returns the interstitial text for grade, matching the grade
// case-insensitively and ignoring surrounding blanks. For a grade with no
// text (or no grade) it falls back to the "Pass" text, as the old agent did,
// and to "" when there is none.
func (s Settings) GradeText(grade string) string {
	g := strings.TrimSpace(grade)
	if g != "" {
		if t, ok := s.Interstitial[g]; ok {
			return t
		}
		for k, t := range s.Interstitial {
			if strings.EqualFold(strings.TrimSpace(k), g) {
				return t
			}
		}
	}
	for k, t := range s.Interstitial {
		if strings.EqualFold(strings.TrimSpace(k), "pass") {
			return t
		}
	}
	return ""
}

// Site holds the site-wide settings: the default organisation, the long
// names of organisations, per-organisation overrides and defaults for every
// course. The zero Site is usable.
type Site struct {
	// DefaultOrg is the organisation name used when nothing more specific is
	// known (DEFAULT_ORG).
	DefaultOrg string
	// OrgsLong maps an organisation short name (the ORG in a course id) to
	// its long name (CERT_ORGS_LONG).
	OrgsLong map[string]string
	// Orgs holds per-organisation settings, keyed by short name, with the
	// same keys as a cert-data.yml course entry (YAML key ORGS).
	Orgs map[string]map[string]any
	// Defaults holds site-wide course settings with the same keys as a
	// cert-data.yml course entry (CERTS_ARE_CALLED, VERIFY, ISSUED_DATE,
	// COURSE_ASSOCIATION_TEXT, ...), given at the top level of the site YAML.
	Defaults map[string]any
}

// LoadSite reads a site YAML file:
//
//	DEFAULT_ORG: Example University
//	CERT_ORGS_LONG: {MITx: Massachusetts Institute of Technology}
//	CERTS_ARE_CALLED: Statement of Accomplishment
//	ORGS:
//	  HarvardX: {CERTS_ARE_CALLED: Certificate of Achievement}
func LoadSite(path string) (Site, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Site{}, fmt.Errorf("read site settings %s: %w", path, err)
	}
	s, err := ParseSite(b)
	if err != nil {
		return Site{}, fmt.Errorf("site settings %s: %w", path, err)
	}
	return s, nil
}

// ParseSite parses site settings in the format LoadSite reads.
func ParseSite(b []byte) (Site, error) {
	top, err := parseYAMLMap(b)
	if err != nil {
		return Site{}, err
	}
	site := Site{Defaults: map[string]any{}}
	for k, v := range top {
		switch strings.ToUpper(k) {
		case "DEFAULT_ORG":
			site.DefaultOrg, _ = stringValue(v)
		case "CERT_ORGS_LONG":
			m, ok := v.(map[string]any)
			if !ok && v != nil {
				return Site{}, fmt.Errorf("CERT_ORGS_LONG must be a mapping of short name to long name")
			}
			site.OrgsLong = map[string]string{}
			for org, name := range m {
				site.OrgsLong[org], _ = stringValue(name)
			}
		case "ORGS":
			m, ok := v.(map[string]any)
			if !ok && v != nil {
				return Site{}, fmt.Errorf("ORGS must be a mapping of short name to settings")
			}
			site.Orgs = map[string]map[string]any{}
			for org, e := range m {
				em, ok := e.(map[string]any)
				if !ok {
					return Site{}, fmt.Errorf("ORGS.%s must be a mapping", org)
				}
				site.Orgs[org] = em
			}
		default:
			site.Defaults[k] = v
		}
	}
	if err := checkEntry("site defaults", site.Defaults); err != nil {
		return Site{}, err
	}
	for org, e := range site.Orgs {
		if err := checkEntry("organisation "+org, e); err != nil {
			return Site{}, err
		}
	}
	return site, nil
}

// Option configures Load.
type Option func(*options)

type options struct{ log *slog.Logger }

// WithLogger sets the logger for warnings about the settings file
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Catalog answers "what are the settings of this course". It is read-only
// after Load and safe for concurrent use.
type Catalog struct {
	site  Site
	exact map[string]map[string]any   // by the key as written in cert-data.yml
	byID  map[CourseID]map[string]any // by parsed course id, so both forms match
}

// Load reads cert-data.yml at certDataPath ("" for none: site defaults
// only) and checks every entry, so that configuration mistakes (an
// unreadable VERIFY, a malformed file) stop certd at start rather than fail
// jobs later. Entries keyed by something that is not a course id are kept
// for exact lookups; non-mapping entries are skipped with a warning.
func Load(certDataPath string, site Site, opts ...Option) (*Catalog, error) {
	o := options{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	c := &Catalog{site: site, exact: map[string]map[string]any{}, byID: map[CourseID]map[string]any{}}
	if certDataPath == "" {
		return c, nil
	}
	b, err := os.ReadFile(certDataPath)
	if err != nil {
		return nil, fmt.Errorf("read course settings %s: %w", certDataPath, err)
	}
	top, err := parseYAMLMap(b)
	if err != nil {
		return nil, fmt.Errorf("course settings %s: %w", certDataPath, err)
	}
	for _, key := range sortedKeys(top) {
		entry, ok := top[key].(map[string]any)
		if !ok {
			o.log.Warn("course settings: ignoring entry that is not a mapping", "file", certDataPath, "key", key)
			continue
		}
		if err := checkEntry(key, entry); err != nil {
			return nil, fmt.Errorf("course settings %s: %w", certDataPath, err)
		}
		if v, ok := lookup(entry, "ISSUED_DATE"); ok {
			if d, _ := stringValue(v); d != "" && !strings.EqualFold(d, Rolling) {
				if _, _, err := parseFreeDate(d); err != nil {
					o.log.Warn("course settings: ISSUED_DATE is not a date; it will be printed as written",
						"file", certDataPath, "course", key, "issued_date", d)
				}
			}
		}
		c.exact[key] = entry
		if id, err := ParseCourseID(key); err == nil {
			// If both forms of one course appear, the course-v1 form wins.
			if _, dup := c.byID[id]; !dup || strings.HasPrefix(key, "course-v1:") {
				c.byID[id] = entry
			}
		}
	}
	return c, nil
}

// Resolve returns the settings for courseID, layering the course's entry
// (matched exactly, or by organisation/course/run so that either id form
// matches) over its organisation's settings over the site defaults.
// A course with no entry gets organisation and site settings.
// It fails only for a course id that cannot be parsed and has no entry
// (ErrInvalidCourseID).
func (c *Catalog) Resolve(courseID string) (Settings, error) {
	entry, ok := c.exact[strings.TrimSpace(courseID)]
	id, idErr := ParseCourseID(courseID)
	if !ok {
		if idErr != nil {
			return Settings{}, idErr
		}
		entry = c.byID[id]
	}
	org := id.Org
	if v, ok := lookup(entry, "ORG"); ok {
		if s, ok := stringValue(v); ok && s != "" {
			org = s
		}
	}
	layers := []map[string]any{entry, c.site.Orgs[org], c.site.Defaults}
	get := func(key string) (string, bool) {
		for _, l := range layers {
			if v, ok := lookup(l, key); ok {
				if s, ok := stringValue(v); ok && s != "" {
					return s, true
				}
			}
		}
		return "", false
	}
	or := func(key, def string) string {
		if s, ok := get(key); ok {
			return s
		}
		return def
	}

	s := Settings{
		LongCourse:           or("LONG_COURSE", ""),
		IssuedDate:           or("ISSUED_DATE", Rolling),
		Version:              or("VERSION", ""),
		TemplateFile:         or("TEMPLATEFILE", ""),
		CertsAreCalled:       or("CERTS_ARE_CALLED", DefaultCertsAreCalled),
		CertsAreCalledPlural: or("CERTS_ARE_CALLED_PLURAL", DefaultCertsAreCalledPlural),
		AssociationText:      or("COURSE_ASSOCIATION_TEXT", DefaultAssociationText),
		HanStyle:             or("HAN_STYLE", ""),
		Verify:               true,
		Credential:           true,
		OrgURL:               or("ORG_URL", ""),
		Description:          or("COURSE_DESCRIPTION", ""),
		Criteria:             or("CRITERIA", ""),
	}
	if v, ok := get("VALID_FOR"); ok {
		s.ValidFor, _ = ParseValidFor(v) // checked at load
	}
	for _, l := range layers {
		if v, ok := lookup(l, "CREDENTIAL"); ok && v != nil {
			b, _ := boolValue(v) // checked at load
			s.Credential = b
			break
		}
	}
	s.Template = s.TemplateFile
	if s.Template == "" {
		s.Template = s.Version
	}
	switch lo, ok := get("LONG_ORG"); {
	case ok:
		s.LongOrg = lo
	case c.site.OrgsLong[org] != "":
		s.LongOrg = c.site.OrgsLong[org]
	case c.site.DefaultOrg != "":
		s.LongOrg = c.site.DefaultOrg
	default:
		s.LongOrg = org
	}
	for _, l := range layers {
		if v, ok := lookup(l, "VERIFY"); ok && v != nil {
			b, _ := boolValue(v) // checked at load
			s.Verify = b
			break
		}
	}
	if !s.Verify {
		s.Credential = false // the old agent's VERIFY: false: no signature, pages or credential
	}
	for _, l := range layers {
		if v, ok := lookup(l, "INTERSTITIAL"); ok {
			if m, ok := v.(map[string]any); ok {
				s.Interstitial = make(map[string]string, len(m))
				for g, t := range m {
					s.Interstitial[g], _ = stringValue(t)
				}
				break
			}
		}
	}
	return s, nil
}

// checkEntry validates the values certd interprets, so that mistakes are
// reported when the file is loaded.
func checkEntry(name string, e map[string]any) error {
	if v, ok := lookup(e, "VERIFY"); ok && v != nil {
		if _, err := boolValue(v); err != nil {
			return fmt.Errorf("%s: VERIFY: %w", name, err)
		}
	}
	if v, ok := lookup(e, "CREDENTIAL"); ok && v != nil {
		if _, err := boolValue(v); err != nil {
			return fmt.Errorf("%s: CREDENTIAL: %w", name, err)
		}
	}
	if v, ok := lookup(e, "VALID_FOR"); ok && v != nil {
		s, _ := stringValue(v)
		if _, err := ParseValidFor(s); err != nil {
			return fmt.Errorf("%s: VALID_FOR: %w", name, err)
		}
	}
	if v, ok := lookup(e, "INTERSTITIAL"); ok && v != nil {
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("%s: interstitial must be a mapping of grade to text", name)
		}
	}
	if v, ok := lookup(e, "HAN_STYLE"); ok && v != nil {
		switch s, _ := stringValue(v); s {
		case "", "ja", "zh-Hans", "zh-Hant", "ko":
		default:
			return fmt.Errorf("%s: HAN_STYLE %q: want ja, zh-Hans, zh-Hant or ko", name, s)
		}
	}
	if v, ok := lookup(e, "ISSUED_DATE"); ok && v != nil {
		if _, ok := v.(map[string]any); ok {
			return fmt.Errorf("%s: ISSUED_DATE must be ROLLING or a date", name)
		}
		if _, ok := v.([]any); ok {
			return fmt.Errorf("%s: ISSUED_DATE must be ROLLING or a date", name)
		}
	}
	return nil
}

// lookup finds key in e, ignoring case (old files mix LONG_ORG and interstitial).
func lookup(e map[string]any, key string) (any, bool) {
	if e == nil {
		return nil, false
	}
	if v, ok := e[key]; ok {
		return v, true
	}
	for k, v := range e {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// stringValue turns a scalar into text. A YAML false (TEMPLATEFILE: False)
// means "not set".
func stringValue(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return strings.TrimSpace(x), true
	case bool:
		if !x {
			return "", false
		}
		return "true", true
	}
	return "", false
}

var errNotBool = errors.New("want true or false")

// boolValue reads booleans the way YAML 1.1 (PyYAML) did, including strings
// such as "False", "yes" and "off".
func boolValue(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "yes", "y", "on", "1":
			return true, nil
		case "false", "no", "n", "off", "0":
			return false, nil
		}
		return false, fmt.Errorf("%w, got %q", errNotBool, x)
	}
	return false, fmt.Errorf("%w, got %T", errNotBool, v)
}

// ParseValidFor reads VALID_FOR: <n>d (days), <n>y (years of 365 days) or a
// Go duration ("8760h"); "" is 0 (no expiry).
func ParseValidFor(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'y': 365 * 24 * time.Hour}[v[len(v)-1]]
	if unit != 0 {
		n, err := strconv.Atoi(v[:len(v)-1])
		if err != nil || n <= 0 || n > 1000*365 {
			return 0, fmt.Errorf("%q: want e.g. 365d, 2y or 8760h", v)
		}
		if v[len(v)-1] == 'y' && n > 1000 {
			return 0, fmt.Errorf("%q: more than 1000 years", v)
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want e.g. 365d, 2y or 8760h", v)
	}
	return d, nil
}
