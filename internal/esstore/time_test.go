package esstore

import "time"

func timeNow() time.Time { return time.Now().UTC() }
