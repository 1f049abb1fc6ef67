package labworld

import "log/slog"

// defaultPlayer is the player `reconcile lab serve` runs in every cluster.
func defaultPlayer(*slog.Logger) ClusterPlayer { return nil }
