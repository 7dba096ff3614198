package cli

// examples are the Examples: sections of help, by command path.
var examples = map[string]string{}
