package twiliostub

import (
	"net/url"
	"strconv"
)

// listPage cuts one page out of items and wraps it in Twilio's list
// envelope: {"<key>": [...], "meta": {...}}. Page URLs name the real host,
// as Twilio's do; twilio-go follows meta.next_page_url through the same
// rewriting transport as the first request.
func listPage(q *request, key string, items []any) map[string]any {
	size := 50
	if n, err := strconv.Atoi(q.query.Get("PageSize")); err == nil && n > 0 {
		size = n
	}
	num := 0
	if n, err := strconv.Atoi(q.query.Get("Page")); err == nil && n > 0 {
		num = n
	}
	base := "https://" + q.api.host + q.r.URL.Path
	pageURL := func(p int) string {
		v := url.Values{}
		v.Set("PageSize", strconv.Itoa(size))
		v.Set("Page", strconv.Itoa(p))
		if p > 0 {
			v.Set("PageToken", "PT"+strconv.Itoa(p*size))
		}
		if o := q.query.Get("Order"); o != "" {
			v.Set("Order", o)
		}
		return base + "?" + v.Encode()
	}
	from := min(num*size, len(items))
	to := min(from+size, len(items))
	meta := map[string]any{
		"page":              num,
		"page_size":         size,
		"first_page_url":    pageURL(0),
		"previous_page_url": nil,
		"url":               pageURL(num),
		"next_page_url":     nil,
		"key":               key,
	}
	if num > 0 {
		meta["previous_page_url"] = pageURL(num - 1)
	}
	if to < len(items) {
		meta["next_page_url"] = pageURL(num + 1)
	}
	return map[string]any{key: append([]any{}, items[from:to]...), "meta": meta}
}
