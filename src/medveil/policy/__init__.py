"""What to do: the standard's table, options, named profiles and user recipes."""

from medveil.policy.options import BASIC_PROFILE_CODE, OPTION_CODES, Option
from medveil.policy.profile import AttributeDecision, PixelSettings, Policy, PrivateDictionary
from medveil.policy.profiles import PROFILES, get_profile
from medveil.policy.recipe import load_recipe
from medveil.policy.table import Table, load_table

__all__ = [
           "BASIC_PROFILE_CODE",
           "OPTION_CODES",
           "PROFILES",
           "AttributeDecision",
           "Option",
           "PixelSettings",
           "Policy",
           "PrivateDictionary",
           "Table",
           "get_profile",
           "load_recipe",
           "load_table",
]
