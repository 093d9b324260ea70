// Builds the web console's static assets into dist/console (issue 17). Placeholder until the console exists.
