"""Authentication: the accounts, their passwords and tokens, and the caller of each request.

Login and refresh exchange credentials for tokens (`routes`); `caller` turns a
request's token into its `Principal`, enforcing what the view declared with
`web.access`.
"""
