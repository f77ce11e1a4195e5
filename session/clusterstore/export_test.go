package clusterstore

// MapError is mapErr, for tests.
var MapError = mapErr
