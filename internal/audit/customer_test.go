package audit

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flexstream/flexstream/internal/pii"
)

func TestPseudonyms(t *testing.T) {
	p, err := pii.New([]byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	phone := p.Phone("+15551234567")
	tests := []struct {
		name string
		raw  string
		want []string
	}{
		{"bare number", "+15551234567", []string{phone, "whatsapp:" + phone}},
		{"formatted number", " +1 (555) 123-4567 ", []string{phone, "whatsapp:" + phone}},
		{"WhatsApp address", "whatsapp:+15551234567", []string{phone, "whatsapp:" + phone}},
		{"another channel's address", "rcs:+15551234567", []string{phone, "whatsapp:" + phone, "rcs:" + phone}},
		{"e-mail address", "Ada@Example.com", []string{p.Email("ada@example.com")}},
		{"channel id that is no number", "messenger:ada.lovelace", []string{p.Address("messenger:ada.lovelace")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := Pseudonyms(p, tt.raw)
			require.NoError(t, err)
			var got []string
			for _, x := range ps {
				got = append(got, x.Pseudonym)
				require.NotEmpty(t, x.Where)
				require.NotContains(t, x.Pseudonym, "5551234567", "never the number itself")
			}
			require.Equal(t, tt.want, got)
		})
	}
	// What the projector stores for a WhatsApp customer is among them.
	ps, err := Pseudonyms(p, "+15551234567")
	require.NoError(t, err)
	require.Equal(t, p.Address("whatsapp:+15551234567"), ps[1].Pseudonym)

	for _, bad := range []string{"", "alice", "12", "whatsapp:"} {
		_, err := Pseudonyms(p, bad)
		requireErrorIs(t, err, ErrNotCustomer)
	}
}

func TestWritePseudonyms(t *testing.T) {
	ps := []Pseudonym{{Pseudonym: "ph:aa:67", Where: "the bare number"}, {Pseudonym: "whatsapp:ph:aa:67", Where: "WhatsApp addresses"}}
	var b bytes.Buffer
	require.NoError(t, WritePseudonyms(&b, FormatTable, ps))
	require.Equal(t, `the customer's pseudonyms in the store (search for any of them):
PSEUDONYM          WHERE
ph:aa:67           the bare number
whatsapp:ph:aa:67  WhatsApp addresses
`, b.String())

	b.Reset()
	require.NoError(t, WritePseudonyms(&b, FormatJSON, ps))
	var got []Pseudonym
	require.NoError(t, json.Unmarshal(b.Bytes(), &got))
	require.Equal(t, ps, got)

	b.Reset()
	require.NoError(t, WritePseudonyms(&b, FormatCSV, ps))
	recs, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	require.Equal(t, [][]string{{"pseudonym", "where"}, {"ph:aa:67", "the bare number"}, {"whatsapp:ph:aa:67", "WhatsApp addresses"}}, recs)

	require.Error(t, WritePseudonyms(&b, "xml", ps))
}
