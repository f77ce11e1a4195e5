// Package interop holds tests that run Tether with the real servers users
// put it next to: Apache Tomcat behind the balancer, HAProxy in front of it
// and nginx behind it speaking the PROXY protocol, and (for the session
// library) Apache httpd, mod_jk and HAProxy in front of Tether-session apps.
// The servers come from Debian's packages, which .ci/run installs.
package interop
