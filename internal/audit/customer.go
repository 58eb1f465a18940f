package audit

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/flexstream/flexstream/internal/pii"
)

// Pseudonym is one form a customer's identifier takes in the store.
type Pseudonym struct {
	Pseudonym string `json:"pseudonym"`
	Where     string `json:"where"` // the fields that hold this form
}

// ErrNotCustomer: the value is not a phone number, an e-mail address or a
// channel address.
var ErrNotCustomer = errors.New("want a phone number (+15551234567), a channel address (whatsapp:+15551234567, messenger:…) or an e-mail address")

// Pseudonyms are the pseudonyms a customer's number (or address) has in
// the store, as the projector computes them with p: the bare number's
// (SMS addresses, task attributes "from", a chat identity, numbers in
// free text) and its WhatsApp address's; a channel address given with
// another prefix, that address's too. Searching the audit output, the
// query API or the store for any of them finds the customer. raw itself
// is never part of the result.
func Pseudonyms(p *pii.Pseudonymizer, raw string) ([]Pseudonym, error) {
	raw = strings.TrimSpace(raw)
	prefix, rest := "", raw
	if i := strings.IndexByte(raw, ':'); i > 0 && !strings.Contains(raw[:i], "@") {
		prefix, rest = raw[:i+1], raw[i+1:]
	}
	switch {
	case pii.IsPhone(rest):
		out := []Pseudonym{
			{Pseudonym: p.Address(rest), Where: "the bare number: SMS addresses and authors, task attributes (from), chat identities, numbers inside text"},
			{Pseudonym: p.Address("whatsapp:" + rest), Where: "WhatsApp addresses and authors, task attributes (from)"},
		}
		if prefix != "" && !strings.EqualFold(prefix, "whatsapp:") {
			out = append(out, Pseudonym{Pseudonym: p.Address(raw), Where: strings.TrimSuffix(prefix, ":") + " addresses and authors, task attributes (from)"})
		}
		return out, nil
	case pii.IsEmail(rest):
		out := []Pseudonym{{Pseudonym: p.Address(rest), Where: "the e-mail address: identities, task attributes, addresses inside text"}}
		if prefix != "" {
			out = append(out, Pseudonym{Pseudonym: p.Address(raw), Where: strings.TrimSuffix(prefix, ":") + " addresses"})
		}
		return out, nil
	case prefix != "" && rest != "":
		return []Pseudonym{{Pseudonym: p.Address(raw), Where: strings.TrimSuffix(prefix, ":") + " addresses and authors, task attributes (from)"}}, nil
	}
	return nil, ErrNotCustomer
}

// WritePseudonyms renders pseudonyms in format.
func WritePseudonyms(w io.Writer, format string, ps []Pseudonym) error {
	switch format {
	case FormatJSON:
		if ps == nil {
			ps = []Pseudonym{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(ps)
	case FormatCSV:
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"pseudonym", "where"})
		for _, p := range ps {
			_ = cw.Write([]string{p.Pseudonym, p.Where})
		}
		cw.Flush()
		return cw.Error()
	case FormatTable:
		if _, err := fmt.Fprintln(w, "the customer's pseudonyms in the store (search for any of them):"); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PSEUDONYM\tWHERE")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\n", p.Pseudonym, p.Where)
		}
		return tw.Flush()
	}
	return fmt.Errorf("audit: unknown format %q (want %s)", format, strings.Join(Formats, ", "))
}
