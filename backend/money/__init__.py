"""The fund's money engine without a database: contract dates and payout schedules.

`calendar` adds whole calendar months to a deposit date; `schedule` turns a version of a fund's
terms, a principal and a deposit date into the dated, exact-cent items the fund owes. The fund
terms themselves live in `backend.funds`.
"""
