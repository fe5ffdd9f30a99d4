"""The native stand-in for Kibana: the CEO summary and the HTML report, from the panels' queries."""
