package credential

import (
	"net/url"
	"strconv"
	"time"
)

// LinkedInCert is what LinkedIn's "Add to profile" form is pre-filled with.
type LinkedInCert struct {
	Name             string // the certificate's name
	OrganizationName string
	// OrganizationID, if known, is the organisation's LinkedIn company id
	// (links the entry to its page); else OrganizationName is shown.
	OrganizationID string
	Issued         time.Time
	Expires        time.Time // zero: does not expire
	URL            string    // the certificate's verify page
	ID             string    // the certificate's id (verify uuid)
}

// LinkedInAddToProfileURL returns LinkedIn's add-to-profile link for a
// certification, pre-filled with name, organisation, issue month and year
// (and expiry), URL and id.
func LinkedInAddToProfileURL(c LinkedInCert) string {
	q := url.Values{}
	q.Set("startTask", "CERTIFICATION_NAME")
	q.Set("name", c.Name)
	if c.OrganizationID != "" {
		q.Set("organizationId", c.OrganizationID)
	} else {
		q.Set("organizationName", c.OrganizationName)
	}
	if !c.Issued.IsZero() {
		q.Set("issueYear", strconv.Itoa(c.Issued.UTC().Year()))
		q.Set("issueMonth", strconv.Itoa(int(c.Issued.UTC().Month())))
	}
	if !c.Expires.IsZero() {
		q.Set("expirationYear", strconv.Itoa(c.Expires.UTC().Year()))
		q.Set("expirationMonth", strconv.Itoa(int(c.Expires.UTC().Month())))
	}
	if c.URL != "" {
		q.Set("certUrl", c.URL)
	}
	if c.ID != "" {
		q.Set("certId", c.ID)
	}
	return "https://www.linkedin.com/profile/add?" + q.Encode()
}
