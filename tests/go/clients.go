// Go's database/sql with go-sql-driver/mysql through the proxy (or straight to a server):
//
//	clients PORT USER PASSWORD DATABASE [CA_FILE]
//
// With CA_FILE the connection uses TLS and verifies the certificate against it. Native
// passwords are not allowed (allowNativePasswords=false), so only caching_sha2_password
// (fast authentication, or full authentication over TLS or with the server's RSA key) can
// log in. Prints what it saw as JSON; exits non-zero on any error.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
)

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		os.Exit(1)
	}
}

func main() {
	port, user, password, database := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	params := "allowNativePasswords=false&interpolateParams=false"
	if len(os.Args) > 5 {
		pem, err := os.ReadFile(os.Args[5])
		must(err, "read CA")
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		must(mysql.RegisterTLSConfig("test", &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}), "TLS config")
		params += "&tls=test"
	}
	dsn := fmt.Sprintf("%s:%s@tcp(127.0.0.1:%s)/%s?%s", user, password, port, database, params)
	db, err := sql.Open("mysql", dsn)
	must(err, "open")
	db.SetMaxOpenConns(2)
	out := map[string]interface{}{}

	var current string
	must(db.QueryRow("SELECT CURRENT_USER()").Scan(&current), "CURRENT_USER()")
	out["user"] = strings.SplitN(current, "@", 2)[0]
	// A prepared statement with parameters (the binary protocol), then a large result.
	var sum int64
	var text string
	must(db.QueryRow("SELECT ? + ?, CONCAT(?, '!')", 40, 2, "go").Scan(&sum, &text), "prepared")
	out["prepared"] = fmt.Sprintf("%d %s", sum, text)
	rows, err := db.Query("SELECT seq FROM seq_1_to_20000")
	must(err, "rows")
	count := 0
	for rows.Next() {
		var n int64
		must(rows.Scan(&n), "scan")
		count++
	}
	must(rows.Err(), "rows end")
	out["rows"] = count
	// A transaction keeps its own view: its write is visible inside, gone after ROLLBACK.
	tx, err := db.Begin()
	must(err, "begin")
	_, err = tx.Exec("CREATE TEMPORARY TABLE go_t (id INT)")
	must(err, "temporary table")
	_, err = tx.Exec("INSERT INTO go_t VALUES (1), (2)")
	must(err, "insert")
	var inside int
	must(tx.QueryRow("SELECT COUNT(*) FROM go_t").Scan(&inside), "count inside")
	must(tx.Rollback(), "rollback")
	out["inside"] = inside
	must(db.Close(), "close")
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
