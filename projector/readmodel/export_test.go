package readmodel

// Dump is every key of the store and its value: views, indexes, stats
// and checkpoint.
func Dump(s *Store) (map[string]string, error) {
	out := map[string]string{}
	err := s.scan(nil, "", func(k string, v []byte) (bool, error) {
		out[k] = string(v)
		return true, nil
	})
	return out, err
}
