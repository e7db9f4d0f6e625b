package courses

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidDate is returned (wrapped) for an issue date that cannot be
// understood: a job's issued_date that is not YYYY-MM-DD, or a fixed
// ISSUED_DATE that is not a date. It is permanent.
var ErrInvalidDate = errors.New("invalid issue date")

// Rolling is the ISSUED_DATE value meaning "the day the certificate is made".
const Rolling = "ROLLING"

// FormatDate formats t's calendar date the way certificates print it:
// "February 2nd, 2012", "March 11th, 2013", "May 23rd, 2014".
func FormatDate(t time.Time) string {
	return t.Month().String() + " " + strconv.Itoa(t.Day()) + ordinal(t.Day()) + ", " + strconv.Itoa(t.Year())
}

func ordinal(d int) string {
	if d%100 >= 11 && d%100 <= 13 {
		return "th"
	}
	switch d % 10 {
	case 1:
		return "st"
	case 2:
		return "nd"
	case 3:
		return "rd"
	}
	return "th"
}

var isoPrefix = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})(?:$|[T ])`)

// IssueDate chooses the date a certificate shows: the job's issued_date
// (ISO YYYY-MM-DD, a time part is ignored) wins; otherwise the course's fixed
// ISSUED_DATE (ISO, or the old agent's free text such as "May 6th, 2013",
// "Jan. 1st, 1970" or "June 2013", the last meaning the 1st); otherwise, for
// ROLLING or an empty setting, the UTC date of now. The result is midnight UTC.
func IssueDate(jobIssued string, s Settings, now time.Time) (time.Time, error) {
	if jobIssued = strings.TrimSpace(jobIssued); jobIssued != "" {
		m := isoPrefix.FindStringSubmatch(jobIssued)
		if m == nil {
			return time.Time{}, fmt.Errorf("%w: issued_date %q is not YYYY-MM-DD", ErrInvalidDate, jobIssued)
		}
		t, err := time.Parse("2006-01-02", m[1])
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: issued_date %q: %v", ErrInvalidDate, jobIssued, err)
		}
		return t, nil
	}
	fixed := strings.TrimSpace(s.IssuedDate)
	if fixed == "" || strings.EqualFold(fixed, Rolling) {
		y, m, d := now.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
	}
	t, _, err := parseFreeDate(fixed)
	if err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// DateText is IssueDate formatted for display. Unlike IssueDate it keeps a
// fixed ISSUED_DATE that names only a month ("June 2013") as a month, and
// shows one that is not a date at all ("Fall 2012") verbatim, as the old
// agent did; only a malformed job issued_date is an error.
func DateText(jobIssued string, s Settings, now time.Time) (string, error) {
	fixed := strings.TrimSpace(s.IssuedDate)
	if strings.TrimSpace(jobIssued) == "" && fixed != "" && !strings.EqualFold(fixed, Rolling) {
		t, monthOnly, err := parseFreeDate(fixed)
		switch {
		case err != nil:
			return fixed, nil
		case monthOnly:
			return t.Month().String() + " " + strconv.Itoa(t.Year()), nil
		}
		return FormatDate(t), nil
	}
	t, err := IssueDate(jobIssued, s, now)
	if err != nil {
		return "", err
	}
	return FormatDate(t), nil
}

var (
	ordinalSuffix = regexp.MustCompile(`(?i)\b(\d{1,2})(st|nd|rd|th)\b`)
	dateJunk      = strings.NewReplacer(",", " ", ".", " ")
	sept          = regexp.MustCompile(`(?i)\bsept\b`)
)

var dayLayouts = []string{
	"2006-01-02", "2006/01/02", "January 2 2006", "Jan 2 2006", "2 January 2006", "2 Jan 2006",
}
var monthLayouts = []string{"January 2006", "Jan 2006", "2006-01"}

// parseFreeDate reads the fixed ISSUED_DATE strings found in old cert-data.yml
// files. monthOnly is true when the text names a month but no day.
func parseFreeDate(s string) (t time.Time, monthOnly bool, err error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, false, nil
	}
	norm := ordinalSuffix.ReplaceAllString(s, "$1")
	norm = sept.ReplaceAllString(norm, "Sep")
	if !strings.Contains(norm, "-") && !strings.Contains(norm, "/") {
		norm = dateJunk.Replace(norm)
	}
	norm = strings.Join(strings.Fields(norm), " ")
	for _, l := range dayLayouts {
		if t, err := time.Parse(l, norm); err == nil {
			return t, false, nil
		}
	}
	for _, l := range monthLayouts {
		if t, err := time.Parse(l, norm); err == nil {
			return t, true, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("%w: ISSUED_DATE %q is neither ROLLING nor a date like 2013-05-06 or \"May 6th, 2013\"", ErrInvalidDate, s)
}
