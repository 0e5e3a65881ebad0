"""The fund's money engine without a database.

- `calendar` adds whole calendar months to a deposit date; `schedule` turns a version of a
  fund's terms, a principal and a deposit date into the dated, exact-cent items the fund owes.
- `units` shares one MT5 account's equity among the investments it backs, by units.
- `performance` gives time-weighted returns (from a value-per-unit series, or by chain-linking
  money values and flows) and money-weighted returns (XIRR).
- `performance_share` computes a performance-share fund's payouts above a high-water mark.
- `flows` is the ledger as valuation reads it; `promised` sets an investment's contractual
  value beside its actual value; `statement` computes the figures of a client's statement.

The fund terms themselves live in `backend.funds`. Every rounding rule is written in the
docstring of the module that applies it.
"""
