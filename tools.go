//go:build tools

// Package syncplane pins modules that packages will import while the
// foundation lands; tidy keeps them in go.mod.
package syncplane

import (
	_ "github.com/MicahParks/keyfunc/v3"
	_ "github.com/gin-gonic/gin"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	_ "github.com/golang-migrate/migrate/v4/source/iofs"
	_ "github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/stretchr/testify/require"
	_ "sigs.k8s.io/yaml"
)
