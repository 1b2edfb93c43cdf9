# FLEET-CONTROLLER-DETECTION-EVALUATOR v2
# Runs after aws:configurePackage and decides whether the package is really (un)installed, as
# controller/detection/SPEC.md (version 2) specifies; spec.yaml beside it holds the case table.
# Windows PowerShell 5.1, run by SSM Agent as LocalSystem. The rules arrive as JSON in the
# environment variable SSM_detectionRules and the action in SSM_action (interpolationType ENV_VAR),
# so nothing from them is ever spliced into this script's text. The only code run from the rules is
# the body of a 'script' rule, which the package's author wrote, in its own powershell.exe.
# Exit codes: 0 as expected, 1 detection disagrees with the action, 2 invalid rules,
# 3 agent too old, 4 a rule could not be evaluated (never counted as "not installed").
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0
# The console's code page (OEM) is what a child powershell.exe writes in; the answer itself is
# written as UTF-8 bytes, as SSM Agent reads it (a redirected .NET writer keeps its encoding).
$script:ChildEncoding = [Console]::OutputEncoding
$script:Utf8 = New-Object System.Text.UTF8Encoding($false)
Add-Type -AssemblyName System.ServiceProcess

$RulesMaxChars = 12288
$GroupDepthMax = 8
$ScriptTimeoutDefault = 60
$ScriptTimeoutMax = 300
$ScriptTimeoutTotalMax = 480
$ExcerptUnits = 300
$Blank = [char[]]@([char]32, [char]9, [char]13, [char]10, [char]11, [char]12)
$VersionPattern = '\A[0-9]{1,9}(\.[0-9]{1,9}){0,7}\z'
$GuidPattern = '\A\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}\z'
$MachineVariables = @('ProgramFiles', 'ProgramFiles(x86)', 'ProgramW6432', 'CommonProgramFiles',
    'CommonProgramFiles(x86)', 'CommonProgramW6432', 'ProgramData', 'ALLUSERSPROFILE', 'SystemRoot',
    'windir', 'SystemDrive', 'PUBLIC')
$ReservedNames = @('CON', 'PRN', 'AUX', 'NUL', 'COM1', 'COM2', 'COM3', 'COM4', 'COM5', 'COM6', 'COM7',
    'COM8', 'COM9', 'LPT1', 'LPT2', 'LPT3', 'LPT4', 'LPT5', 'LPT6', 'LPT7', 'LPT8', 'LPT9')
$Operators = @('eq', 'ne', 'gt', 'ge', 'lt', 'le')
$ServiceStates = @('Running', 'Stopped', 'Paused', 'StartPending', 'StopPending', 'ContinuePending', 'PausePending')
$StartTypes = @('Automatic', 'Manual', 'Disabled')
$UninstallKey = 'SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall'
$QwordMaximum = [decimal]'18446744073709551615'
$SizeMaximum = [decimal]'9223372036854775807'

function Write-Answer([string]$Text) {
    $bytes = $script:Utf8.GetBytes($Text + [Environment]::NewLine)
    $stream = [Console]::OpenStandardOutput()
    $stream.Write($bytes, 0, $bytes.Length)
    $stream.Flush()
}

# --- reading the rules (exit 2 when they break the specification) ----------------------------

function Get-Field($Object, [string]$Name) {
    # The unary comma keeps an array whole: returned bare, a one-member allOf would arrive as its
    # member (PowerShell unrolls what a function outputs).
    foreach ($property in $Object.PSObject.Properties) {
        if ($property.Name -ceq $Name) { return , $property.Value }
    }
    return $null
}

function Test-Field($Object, [string]$Name) {
    foreach ($property in $Object.PSObject.Properties) {
        if ($property.Name -ceq $Name) { return $true }
    }
    return $false
}

function Assert-Fields($Rule, [string]$Where, [string[]]$Allowed) {
    foreach ($property in $Rule.PSObject.Properties) {
        if (-not ($Allowed -ccontains $property.Name)) { throw "${Where}: unknown field '$($property.Name)'" }
    }
}

function Assert-Strings($Value) {
    if ($Value -is [string]) {
        if ($Value -match '\{\{\s*(ssm|ssm-secure|resolve)\s*:') {
            throw 'a string holds a Systems Manager reference (ssm:, ssm-secure: or resolve: in double braces)'
        }
        for ($i = 0; $i -lt $Value.Length; $i++) {
            if ([char]::IsHighSurrogate($Value[$i]) -and $i + 1 -lt $Value.Length -and [char]::IsLowSurrogate($Value[$i + 1])) {
                $i++
            } elseif ([char]::IsSurrogate($Value[$i])) {
                throw 'a string holds a lone surrogate'
            }
        }
    } elseif ($Value -is [System.Array]) {
        foreach ($item in $Value) { Assert-Strings $item }
    } elseif ($Value -is [System.Management.Automation.PSCustomObject]) {
        foreach ($property in $Value.PSObject.Properties) {
            Assert-Strings $property.Name
            Assert-Strings $property.Value
        }
    }
}

function Assert-Text($Rule, [string]$Name, [string]$Where) {
    $value = Get-Field $Rule $Name
    if (-not ($value -is [string]) -or $value.Length -eq 0) { throw "$Where.$Name must be a non-empty string" }
    return $value
}

function Assert-Integer($Value, [string]$Where, [decimal]$Minimum, [decimal]$Maximum) {
    if (-not ($Value -is [int] -or $Value -is [long] -or $Value -is [decimal])) { throw "$Where must be an integer" }
    $number = [decimal]$Value
    if ($number.ToString([System.Globalization.CultureInfo]::InvariantCulture) -cnotmatch '\A-?[0-9]+\z' -or $number -lt $Minimum -or $number -gt $Maximum) {
        throw "$Where must be an integer from $Minimum to $Maximum"
    }
    return $number
}

function Assert-Version($Value, [string]$Where) {
    if (-not ($Value -is [string]) -or -not [regex]::IsMatch($Value.Trim($Blank), $VersionPattern)) {
        throw "$Where is not a dotted version of 1 to 8 parts of 1 to 9 ASCII digits"
    }
}

function Test-MachineVariable([string]$Name) {
    foreach ($known in $MachineVariables) {
        if ([string]::Equals($known, $Name, [StringComparison]::OrdinalIgnoreCase)) { return $true }
    }
    return $false
}

function Assert-Path($Value, [string]$Where) {
    if (-not ($Value -is [string]) -or $Value.Length -eq 0) { throw "$Where must be a non-empty string" }
    if ($Value.StartsWith('%')) {
        $end = $Value.IndexOf('%', 1)
        if ($end -lt 0 -or -not (Test-MachineVariable $Value.Substring(1, $end - 1))) {
            throw "$Where must start with a drive or a machine-wide variable"
        }
        $rest = $Value.Substring($end + 1)
    } elseif ($Value -cmatch '\A[A-Za-z]:') {
        $rest = $Value.Substring(2)
    } else {
        throw "$Where is not an absolute path"
    }
    if ($rest.Length -eq 0 -or ($rest[0] -ne [char]'\' -and $rest[0] -ne [char]'/')) {
        throw "$Where needs a separator after the drive or variable"
    }
    $parts = @($rest.Substring(1).Replace('/', '\').Split([char]'\'))
    if ($parts.Count -gt 1 -and $parts[-1].Length -eq 0) { $parts = @($parts[0..($parts.Count - 2)]) }
    foreach ($part in $parts) {
        $bad = $part.Length -eq 0 -or $part -ceq '.' -or $part -ceq '..' -or $part.Length -gt 255
        $bad = $bad -or $part.IndexOfAny([char[]]'<>:"|?*%') -ge 0 -or $part.EndsWith(' ') -or $part.EndsWith('.')
        foreach ($char in $part.ToCharArray()) { if ([int]$char -lt 32) { $bad = $true } }
        if (-not $bad) { $bad = $ReservedNames -ccontains $part.Split([char]'.')[0].TrimEnd([char]' ').ToUpperInvariant() }
        if ($bad) { throw "$Where has a component Windows would not read as written" }
    }
}

function Assert-Comparison($Rule, [string]$Where) {
    if ((Get-Field $Rule 'check') -ceq 'exists') {
        if ((Test-Field $Rule 'operator') -or (Test-Field $Rule 'value')) { throw "${Where}: check exists takes no operator or value" }
        return
    }
    if (-not ($Operators -ccontains (Get-Field $Rule 'operator'))) { throw "$Where.operator must be one of eq ne gt ge lt le" }
    if (-not (Test-Field $Rule 'value')) { throw "${Where}: a comparing check needs a value" }
}

function Assert-FileRule($Rule, [string]$Where) {
    Assert-Fields $Rule $Where @('type', 'path', 'check', 'operator', 'value')
    Assert-Path (Get-Field $Rule 'path') "$Where.path"
    $check = Get-Field $Rule 'check'
    if (-not (@('exists', 'version', 'size') -ccontains $check)) { throw "$Where.check must be exists, version or size" }
    Assert-Comparison $Rule $Where
    if ($check -ceq 'version') { Assert-Version (Get-Field $Rule 'value') "$Where.value" }
    if ($check -ceq 'size') { [void](Assert-Integer (Get-Field $Rule 'value') "$Where.value" 0 $SizeMaximum) }
}

function Assert-FolderRule($Rule, [string]$Where) {
    Assert-Fields $Rule $Where @('type', 'path')
    Assert-Path (Get-Field $Rule 'path') "$Where.path"
}

function Assert-RegistryRule($Rule, [string]$Where) {
    Assert-Fields $Rule $Where @('type', 'hive', 'key', 'valueName', 'check', 'operator', 'value', 'use32BitView')
    if ((Get-Field $Rule 'hive') -cne 'HKLM') { throw "$Where.hive must be HKLM (LocalSystem sees no user's hive)" }
    $key = Assert-Text $Rule 'key' $Where
    $view = $false
    if (Test-Field $Rule 'use32BitView') {
        $view = Get-Field $Rule 'use32BitView'
        if (-not ($view -is [bool])) { throw "$Where.use32BitView must be true or false" }
    }
    $parts = @($key.Split([char]'\'))
    $bad = $key -match '\A(HKLM|HKCU|HKCR|HKU|HKCC|HKEY_[A-Z_]+|Registry)(:|\\|\z)'
    foreach ($part in $parts) {
        if ($part.Length -eq 0 -or $part.Length -gt 255) { $bad = $true }
        foreach ($char in $part.ToCharArray()) { if ([int]$char -lt 32) { $bad = $true } }
        if ($view -and [string]::Equals($part, 'WOW6432Node', [StringComparison]::OrdinalIgnoreCase)) { $bad = $true }
    }
    if ($bad) { throw "$Where.key is not a key below HKLM as the view sees it" }
    $name = Get-Field $Rule 'valueName'
    if ($null -ne $name -and (-not ($name -is [string]) -or $name.IndexOf([char]0) -ge 0 -or $name.Length -gt 16383)) {
        throw "$Where.valueName must be a string"
    }
    $check = Get-Field $Rule 'check'
    if (-not (@('exists', 'string', 'integer', 'version') -ccontains $check)) { throw "$Where.check must be exists, string, integer or version" }
    Assert-Comparison $Rule $Where
    if ($check -cne 'exists' -and $null -eq $name) { throw "${Where}: a comparing check needs valueName" }
    $value = Get-Field $Rule 'value'
    if ($check -ceq 'string' -and -not ($value -is [string])) { throw "$Where.value must be a string" }
    if ($check -ceq 'integer') { [void](Assert-Integer $value "$Where.value" 0 $QwordMaximum) }
    if ($check -ceq 'version') { Assert-Version $value "$Where.value" }
}

function Assert-ServiceRule($Rule, [string]$Where) {
    Assert-Fields $Rule $Where @('type', 'name', 'check', 'value')
    $name = Assert-Text $Rule 'name' $Where
    $bad = $name.Length -gt 256 -or $name.IndexOfAny([char[]]'/\') -ge 0
    foreach ($char in $name.ToCharArray()) { if ([int]$char -lt 32) { $bad = $true } }
    if ($bad) { throw "$Where.name is not a Windows service name" }
    $check = Get-Field $Rule 'check'
    $value = Get-Field $Rule 'value'
    if ($check -ceq 'exists') {
        if (Test-Field $Rule 'value') { throw "${Where}: check exists takes no value" }
    } elseif ($check -ceq 'state') {
        if (-not ($ServiceStates -ccontains $value)) { throw "$Where.value is not a service state" }
    } elseif ($check -ceq 'startType') {
        if (-not ($StartTypes -ccontains $value)) { throw "$Where.value is not a service start type" }
    } else {
        throw "$Where.check must be exists, state or startType"
    }
}

function Assert-MsiRule($Rule, [string]$Where) {
    Assert-Fields $Rule $Where @('type', 'productCode', 'operator', 'version')
    $code = Get-Field $Rule 'productCode'
    if (-not ($code -is [string]) -or -not [regex]::IsMatch($code, $GuidPattern)) { throw "$Where.productCode is not a GUID in braces" }
    $operator = Get-Field $Rule 'operator'
    $version = Get-Field $Rule 'version'
    if (($null -eq $operator) -ne ($null -eq $version)) { throw "${Where}: operator and version come together" }
    if ($null -ne $operator) {
        if (-not ($Operators -ccontains $operator)) { throw "$Where.operator must be one of eq ne gt ge lt le" }
        Assert-Version $version "$Where.version"
    }
}

function Assert-ScriptRule($Rule, [string]$Where) {
    Assert-Fields $Rule $Where @('type', 'script', 'timeoutSeconds')
    $body = Assert-Text $Rule 'script' $Where
    if ($body.IndexOf([char]0) -ge 0) { throw "$Where.script holds NUL" }
    if (Test-Field $Rule 'timeoutSeconds') {
        [void](Assert-Integer (Get-Field $Rule 'timeoutSeconds') "$Where.timeoutSeconds" 1 $ScriptTimeoutMax)
    }
}

function Assert-Leaf($Rule, [string]$Where) {
    $type = Get-Field $Rule 'type'
    switch -CaseSensitive ([string]$type) {
        'file' { Assert-FileRule $Rule $Where; return }
        'folder' { Assert-FolderRule $Rule $Where; return }
        'registry' { Assert-RegistryRule $Rule $Where; return }
        'service' { Assert-ServiceRule $Rule $Where; return }
        'msi' { Assert-MsiRule $Rule $Where; return }
        'script' { Assert-ScriptRule $Rule $Where; return }
    }
    throw "${Where}: unknown rule type '$type'"
}

function Assert-Rule($Rule, [string]$Where, [int]$Depth) {
    if (-not ($Rule -is [System.Management.Automation.PSCustomObject])) { throw "$Where is not an object" }
    foreach ($group in @('allOf', 'anyOf')) {
        if (Test-Field $Rule $group) {
            if (@($Rule.PSObject.Properties).Count -ne 1) { throw "$Where mixes $group with other fields" }
            if ($Depth -gt $GroupDepthMax) { throw "${Where}: groups nest deeper than $GroupDepthMax" }
            $members = Get-Field $Rule $group
            if (-not ($members -is [System.Array]) -or $members.Count -eq 0) { throw "$Where.$group is not a non-empty list" }
            for ($i = 0; $i -lt $members.Count; $i++) { Assert-Rule $members[$i] "$Where.$group[$i]" ($Depth + 1) }
            return
        }
    }
    Assert-Leaf $Rule $Where
}

function Get-ScriptTimeout($Rule) {
    if (Test-Field $Rule 'timeoutSeconds') { return [int](Get-Field $Rule 'timeoutSeconds') }
    return $ScriptTimeoutDefault
}

function Get-ScriptTimeoutTotal($Rule) {
    foreach ($group in @('allOf', 'anyOf')) {
        if (Test-Field $Rule $group) {
            $total = 0
            foreach ($member in (Get-Field $Rule $group)) { $total += Get-ScriptTimeoutTotal $member }
            return $total
        }
    }
    if ((Get-Field $Rule 'type') -ceq 'script') { return Get-ScriptTimeout $Rule }
    return 0
}

function Read-Rules([string]$Json, [string]$Action) {
    if (-not (@('Install', 'Uninstall') -ccontains $Action)) { throw "action must be Install or Uninstall, got '$Action'" }
    if ($Json.Length -gt $RulesMaxChars) { throw "the rules are $($Json.Length) characters, more than $RulesMaxChars" }
    $rules = $Json | ConvertFrom-Json
    Assert-Strings $rules
    Assert-Rule $rules 'rules' 1
    $total = Get-ScriptTimeoutTotal $rules
    if ($total -gt $ScriptTimeoutTotalMax) { throw "script timeouts add up to $total s, more than $ScriptTimeoutTotalMax s" }
    return $rules
}

# --- evaluating them --------------------------------------------------------------------------

function New-Leaf([string]$Verdict, [string]$What, [string]$Observed) {
    return [pscustomobject]@{ Verdict = $Verdict; Reasons = @("$What ($Observed)") }
}

function New-Finding([string]$Verdict, $Findings) {
    $reasons = @(foreach ($finding in $Findings) { $finding.Reasons })
    return [pscustomobject]@{ Verdict = $Verdict; Reasons = $reasons }
}

function Get-Verdict([int]$Sign, [string]$Operator) {
    $holds = $false
    switch -CaseSensitive ($Operator) {
        'eq' { $holds = $Sign -eq 0 }
        'ne' { $holds = $Sign -ne 0 }
        'gt' { $holds = $Sign -gt 0 }
        'ge' { $holds = $Sign -ge 0 }
        'lt' { $holds = $Sign -lt 0 }
        'le' { $holds = $Sign -le 0 }
    }
    if ($holds) { return 'detected' }
    return 'not-detected'
}

function Get-Sign([decimal]$Left, [decimal]$Right) {
    if ($Left -lt $Right) { return -1 }
    if ($Left -gt $Right) { return 1 }
    return 0
}

function ConvertTo-VersionParts([string]$Text) {
    $trimmed = $Text.Trim($Blank)
    if (-not [regex]::IsMatch($trimmed, $VersionPattern)) { return $null }
    return , ([int[]]($trimmed.Split([char]'.')))
}

function Compare-Versions([string]$Found, [string]$Wanted) {
    $a = ConvertTo-VersionParts $Found
    $b = ConvertTo-VersionParts $Wanted
    $width = [Math]::Max($a.Length, $b.Length)
    for ($i = 0; $i -lt $width; $i++) {
        $x = 0
        $y = 0
        if ($i -lt $a.Length) { $x = $a[$i] }
        if ($i -lt $b.Length) { $y = $b[$i] }
        if ($x -lt $y) { return -1 }
        if ($x -gt $y) { return 1 }
    }
    return 0
}

function Get-Compared($Rule) {
    $check = Get-Field $Rule 'check'
    if ($check -ceq 'exists') { return 'exists' }
    return "$check $(Get-Field $Rule 'operator') $(Get-Field $Rule 'value')"
}

function Get-Sha256([string]$Text) {
    $sha = [System.Security.Cryptography.SHA256]::Create()
    try {
        $bytes = $sha.ComputeHash((New-Object System.Text.UTF8Encoding($false)).GetBytes($Text))
    } finally {
        $sha.Dispose()
    }
    return -join @(foreach ($byte in $bytes) { $byte.ToString('x2') })
}

function Get-What($Rule) {
    $type = [string](Get-Field $Rule 'type')
    if ($type -ceq 'file') { return "file $(Get-Field $Rule 'path') $(Get-Compared $Rule)" }
    if ($type -ceq 'folder') { return "folder $(Get-Field $Rule 'path') exists" }
    if ($type -ceq 'registry') {
        $text = "registry HKLM\$(Get-Field $Rule 'key')"
        if ($null -ne (Get-Field $Rule 'valueName')) {
            $shown = Get-Field $Rule 'valueName'
            if ($shown -ceq '') { $shown = '(Default)' }
            $text = "$text value $shown"
        }
        $text = "$text $(Get-Compared $Rule)"
        if ((Get-Field $Rule 'use32BitView') -eq $true) { $text = "$text (32-bit view)" }
        return $text
    }
    if ($type -ceq 'service') {
        if ((Get-Field $Rule 'check') -ceq 'exists') { return "service $(Get-Field $Rule 'name') exists" }
        return "service $(Get-Field $Rule 'name') $(Get-Field $Rule 'check') $(Get-Field $Rule 'value')"
    }
    if ($type -ceq 'msi') {
        $code = ([string](Get-Field $Rule 'productCode')).ToUpperInvariant()
        if ($null -eq (Get-Field $Rule 'operator')) { return "msi $code installed" }
        return "msi $code version $(Get-Field $Rule 'operator') $(Get-Field $Rule 'version')"
    }
    return "script sha256:$((Get-Sha256 ([string](Get-Field $Rule 'script'))).Substring(0, 12)) exits 0 with output"
}

function Resolve-RulePath([string]$Path) {
    $expanded = $Path
    if ($Path.StartsWith('%')) {
        $end = $Path.IndexOf('%', 1)
        $name = $Path.Substring(1, $end - 1)
        $value = [Environment]::GetEnvironmentVariable($name)
        if ([string]::IsNullOrEmpty($value)) { throw "%$name% is not set for this account" }
        $expanded = $value + $Path.Substring($end + 1)
    }
    return $expanded.Replace('/', '\')
}

function Test-FileRule($Rule) {
    $what = Get-What $Rule
    $path = Resolve-RulePath ([string](Get-Field $Rule 'path'))
    $file = New-Object System.IO.FileInfo($path)
    if (-not $file.Exists) {
        $folder = New-Object System.IO.DirectoryInfo($path)
        if ($folder.Exists) { return New-Leaf 'not-detected' $what 'a folder, not a file' }
        return New-Leaf 'not-detected' $what 'file missing'
    }
    $check = Get-Field $Rule 'check'
    $operator = [string](Get-Field $Rule 'operator')
    if ($check -ceq 'exists') { return New-Leaf 'detected' $what 'file found' }
    if ($check -ceq 'size') {
        $size = $file.Length
        $verdict = Get-Verdict (Get-Sign ([decimal]$size) ([decimal](Get-Field $Rule 'value'))) $operator
        return New-Leaf $verdict $what "found size $size"
    }
    $info = [System.Diagnostics.FileVersionInfo]::GetVersionInfo($file.FullName)
    $parts = @($info.FileMajorPart, $info.FileMinorPart, $info.FileBuildPart, $info.FilePrivatePart)
    if ([string]::IsNullOrEmpty($info.FileVersion) -and ($parts -join '.') -ceq '0.0.0.0') {
        return New-Leaf 'error' $what 'file has no version'
    }
    $version = $parts -join '.'
    $verdict = Get-Verdict (Compare-Versions $version ([string](Get-Field $Rule 'value'))) $operator
    return New-Leaf $verdict $what "found version $version"
}

function Test-FolderRule($Rule) {
    $what = Get-What $Rule
    $path = Resolve-RulePath ([string](Get-Field $Rule 'path'))
    $folder = New-Object System.IO.DirectoryInfo($path)
    if ($folder.Exists) { return New-Leaf 'detected' $what 'folder found' }
    $file = New-Object System.IO.FileInfo($path)
    if ($file.Exists) { return New-Leaf 'not-detected' $what 'a file, not a folder' }
    return New-Leaf 'not-detected' $what 'folder missing'
}

function Open-HklmKey([string]$Key, [bool]$Use32BitView) {
    $view = [Microsoft.Win32.RegistryView]::Registry64
    if ($Use32BitView) { $view = [Microsoft.Win32.RegistryView]::Registry32 }
    $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine, $view)
    try {
        return $base.OpenSubKey($Key)
    } finally {
        $base.Close()
    }
}

function Find-ValueName($Handle, [string]$Name) {
    foreach ($candidate in $Handle.GetValueNames()) {
        if ([string]::Equals($candidate, $Name, [StringComparison]::OrdinalIgnoreCase)) { return $candidate }
    }
    return $null
}

function Get-TypeName($Kind) {
    $names = @{ 'String' = 'REG_SZ'; 'ExpandString' = 'REG_EXPAND_SZ'; 'MultiString' = 'REG_MULTI_SZ';
        'DWord' = 'REG_DWORD'; 'QWord' = 'REG_QWORD'; 'Binary' = 'REG_BINARY'; 'None' = 'REG_NONE' }
    $name = [string]$Kind
    if ($names.ContainsKey($name)) { return $names[$name] }
    return 'a registry type .NET cannot name'
}

function Test-RegistryRule($Rule) {
    $what = Get-What $Rule
    $handle = Open-HklmKey ([string](Get-Field $Rule 'key')) ((Get-Field $Rule 'use32BitView') -eq $true)
    if ($null -eq $handle) { return New-Leaf 'not-detected' $what 'key missing' }
    try {
        if ($null -eq (Get-Field $Rule 'valueName')) { return New-Leaf 'detected' $what 'key found' }
        $name = Find-ValueName $handle ([string](Get-Field $Rule 'valueName'))
        if ($null -eq $name) { return New-Leaf 'not-detected' $what 'value missing' }
        $check = Get-Field $Rule 'check'
        if ($check -ceq 'exists') { return New-Leaf 'detected' $what 'value found' }
        $operator = [string](Get-Field $Rule 'operator')
        $expected = Get-Field $Rule 'value'
        $kind = $handle.GetValueKind($name)
        $type = Get-TypeName $kind
        $raw = $handle.GetValue($name, $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
        if ($check -ceq 'integer') {
            if ($kind -eq [Microsoft.Win32.RegistryValueKind]::DWord) {
                $number = [decimal][BitConverter]::ToUInt32([BitConverter]::GetBytes([int]$raw), 0)
            } elseif ($kind -eq [Microsoft.Win32.RegistryValueKind]::QWord) {
                $number = [decimal][BitConverter]::ToUInt64([BitConverter]::GetBytes([long]$raw), 0)
            } else {
                return New-Leaf 'error' $what "found $type, not REG_DWORD or REG_QWORD"
            }
            return New-Leaf (Get-Verdict (Get-Sign $number ([decimal]$expected)) $operator) $what "found $number"
        }
        if ($kind -ne [Microsoft.Win32.RegistryValueKind]::String -and $kind -ne [Microsoft.Win32.RegistryValueKind]::ExpandString) {
            return New-Leaf 'error' $what "found $type, not REG_SZ or REG_EXPAND_SZ"
        }
        $text = [string]$raw
        if ($check -ceq 'string') {
            $sign = [Math]::Sign([string]::Compare($text, [string]$expected, [StringComparison]::OrdinalIgnoreCase))
            return New-Leaf (Get-Verdict $sign $operator) $what "found '$text'"
        }
        if ($null -eq (ConvertTo-VersionParts $text)) {
            return New-Leaf 'error' $what "found version '$text', not a dotted numeric version"
        }
        $verdict = Get-Verdict (Compare-Versions $text ([string]$expected)) $operator
        return New-Leaf $verdict $what "found version $($text.Trim($Blank))"
    } finally {
        $handle.Close()
    }
}

function Test-ServiceRule($Rule) {
    $what = Get-What $Rule
    $name = [string](Get-Field $Rule 'name')
    $found = $null
    foreach ($candidate in [System.ServiceProcess.ServiceController]::GetServices()) {
        if ([string]::Equals($candidate.ServiceName, $name, [StringComparison]::OrdinalIgnoreCase)) {
            $found = $candidate
            break
        }
    }
    if ($null -eq $found) { return New-Leaf 'not-detected' $what 'service missing' }
    $check = Get-Field $Rule 'check'
    if ($check -ceq 'exists') { return New-Leaf 'detected' $what 'service found' }
    $wanted = [string](Get-Field $Rule 'value')
    if ($check -ceq 'state') {
        $actual = [string]$found.Status
        $verdict = 'not-detected'
        if ([string]::Equals($actual, $wanted, [StringComparison]::OrdinalIgnoreCase)) { $verdict = 'detected' }
        return New-Leaf $verdict $what "found state $actual"
    }
    $actual = [string]$found.StartType
    $verdict = 'not-detected'
    if ([string]::Equals($actual, $wanted, [StringComparison]::OrdinalIgnoreCase)) { $verdict = 'detected' }
    return New-Leaf $verdict $what "found startType $actual"
}

function Get-InstallerProduct([string]$Code) {
    $installer = New-Object -ComObject WindowsInstaller.Installer
    try {
        $type = $installer.GetType()
        $get = [System.Reflection.BindingFlags]::GetProperty
        $state = [int]$type.InvokeMember('ProductState', $get, $null, $installer, @($Code))
        $version = ''
        if ($state -eq 5) {
            try {
                $version = [string]$type.InvokeMember('ProductInfo', $get, $null, $installer, @($Code, 'VersionString'))
            } catch {
                $version = ''
            }
        }
        return [pscustomobject]@{ State = $state; Version = $version }
    } finally {
        [void][System.Runtime.InteropServices.Marshal]::ReleaseComObject($installer)
    }
}

function Get-UninstallEntry([string]$Code, [bool]$WrittenByWindowsInstaller) {
    foreach ($use32 in @($false, $true)) {
        $handle = Open-HklmKey "$UninstallKey\$Code" $use32
        if ($null -eq $handle) { continue }
        try {
            $marker = $null
            $markerName = Find-ValueName $handle 'WindowsInstaller'
            if ($null -ne $markerName -and $handle.GetValueKind($markerName) -eq [Microsoft.Win32.RegistryValueKind]::DWord) {
                $marker = [int]$handle.GetValue($markerName)
            }
            if ($WrittenByWindowsInstaller -and $marker -ne 1) { continue }
            $version = ''
            $versionName = Find-ValueName $handle 'DisplayVersion'
            if ($null -ne $versionName) {
                $kind = $handle.GetValueKind($versionName)
                if ($kind -eq [Microsoft.Win32.RegistryValueKind]::String -or $kind -eq [Microsoft.Win32.RegistryValueKind]::ExpandString) {
                    $version = [string]$handle.GetValue($versionName, '', [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
                }
            }
            return [pscustomobject]@{ Version = $version }
        } finally {
            $handle.Close()
        }
    }
    return $null
}

function Test-MsiRule($Rule) {
    $what = Get-What $Rule
    $code = ([string](Get-Field $Rule 'productCode')).ToUpperInvariant()
    $operator = Get-Field $Rule 'operator'
    $wanted = [string](Get-Field $Rule 'version')
    $product = $null
    try {
        $product = Get-InstallerProduct $code
    } catch {
        $product = $null
    }
    if ($null -eq $product) {
        $entry = Get-UninstallEntry $code $true
        if ($null -eq $entry) { return New-Leaf 'not-detected' $what 'Windows Installer unavailable; no uninstall key for the product' }
        $version = $entry.Version
        if ($null -eq $operator) {
            if ($version) { return New-Leaf 'detected' $what "Windows Installer unavailable; uninstall key found, version $version" }
            return New-Leaf 'detected' $what 'Windows Installer unavailable; uninstall key found, no version recorded'
        }
        if (-not $version) { return New-Leaf 'error' $what 'Windows Installer unavailable; uninstall key found, no version recorded' }
        if ($null -eq (ConvertTo-VersionParts $version)) {
            return New-Leaf 'error' $what "Windows Installer unavailable; uninstall key found, version '$version', not a dotted numeric version"
        }
        $verdict = Get-Verdict (Compare-Versions $version $wanted) $operator
        return New-Leaf $verdict $what "Windows Installer unavailable; uninstall key found, version $($version.Trim($Blank))"
    }
    if ($product.State -eq 1) { return New-Leaf 'not-detected' $what 'product advertised, not installed' }
    if ($product.State -eq 2) { return New-Leaf 'not-detected' $what 'product installed for another user only' }
    if ($product.State -ne 5) {
        if ($null -ne (Get-UninstallEntry $code $false)) {
            return New-Leaf 'not-detected' $what 'product not installed, though an uninstall key names it'
        }
        return New-Leaf 'not-detected' $what 'product not installed'
    }
    $version = $product.Version
    if (-not $version) {
        $entry = Get-UninstallEntry $code $true
        if ($null -ne $entry) { $version = $entry.Version }
    }
    if ($null -eq $operator) {
        if ($version) { return New-Leaf 'detected' $what "installed, version $version" }
        return New-Leaf 'detected' $what 'installed, no version recorded'
    }
    if (-not $version) { return New-Leaf 'error' $what 'installed, no version recorded' }
    if ($null -eq (ConvertTo-VersionParts $version)) {
        return New-Leaf 'error' $what "installed, version '$version', not a dotted numeric version"
    }
    $verdict = Get-Verdict (Compare-Versions $version $wanted) $operator
    return New-Leaf $verdict $what "installed, version $($version.Trim($Blank))"
}

function Get-Excerpt([string]$Text) {
    if ($null -eq $Text) { return '' }
    foreach ($line in $Text.Replace("`r`n", "`n").Replace("`r", "`n").Split([char]10)) {
        $trimmed = $line.Trim($Blank)
        if ($trimmed.Length -eq 0) { continue }
        if ($trimmed.Length -le $ExcerptUnits) { return $trimmed }
        $cut = $ExcerptUnits
        if ([char]::IsHighSurrogate($trimmed[$cut - 1])) { $cut-- }
        return $trimmed.Substring(0, $cut) + '...'
    }
    return ''
}

function Invoke-DetectionScript([string]$Body, [int]$TimeoutSeconds) {
    $folder = $PSScriptRoot
    if (-not $folder) { $folder = [System.IO.Path]::GetTempPath() }
    $file = Join-Path $folder ('fleet-detect-' + [guid]::NewGuid().ToString('N') + '.ps1')
    [System.IO.File]::WriteAllText($file, $Body, (New-Object System.Text.UTF8Encoding($true)))
    try {
        $start = New-Object System.Diagnostics.ProcessStartInfo
        $start.FileName = Join-Path $env:SystemRoot 'System32\WindowsPowerShell\v1.0\powershell.exe'
        $start.Arguments = '-NoProfile -NonInteractive -ExecutionPolicy Bypass -File "' + $file + '"'
        $start.WorkingDirectory = $folder
        $start.UseShellExecute = $false
        $start.CreateNoWindow = $true
        $start.RedirectStandardInput = $true
        $start.RedirectStandardOutput = $true
        $start.RedirectStandardError = $true
        $start.StandardOutputEncoding = $script:ChildEncoding
        $start.StandardErrorEncoding = $script:ChildEncoding
        $process = [System.Diagnostics.Process]::Start($start)
        try {
            $process.StandardInput.Close()
            $stdout = $process.StandardOutput.ReadToEndAsync()
            $stderr = $process.StandardError.ReadToEndAsync()
            if (-not $process.WaitForExit($TimeoutSeconds * 1000)) {
                $kill = New-Object System.Diagnostics.ProcessStartInfo
                $kill.FileName = Join-Path $env:SystemRoot 'System32\taskkill.exe'
                $kill.Arguments = "/PID $($process.Id) /T /F"
                $kill.UseShellExecute = $false
                $kill.CreateNoWindow = $true
                $killer = [System.Diagnostics.Process]::Start($kill)
                [void]$killer.WaitForExit(30000)
                [void]$process.WaitForExit(30000)
                return [pscustomobject]@{ TimedOut = $true; ExitCode = -1; Stdout = ''; Stderr = '' }
            }
            $process.WaitForExit()
            [void]$stdout.Wait(30000)
            [void]$stderr.Wait(30000)
            return [pscustomobject]@{ TimedOut = $false; ExitCode = $process.ExitCode; Stdout = [string]$stdout.Result; Stderr = [string]$stderr.Result }
        } finally {
            $process.Dispose()
        }
    } finally {
        Remove-Item -LiteralPath $file -Force -ErrorAction SilentlyContinue
    }
}

function Test-ScriptRule($Rule) {
    $what = Get-What $Rule
    $timeout = Get-ScriptTimeout $Rule
    $run = Invoke-DetectionScript ([string](Get-Field $Rule 'script')) $timeout
    if ($run.TimedOut) { return New-Leaf 'error' $what "script timed out after $timeout s" }
    $stderr = Get-Excerpt $run.Stderr
    if ($run.ExitCode -ne 0) {
        if ($stderr) { return New-Leaf 'error' $what "script exited $($run.ExitCode): $stderr" }
        return New-Leaf 'error' $what "script exited $($run.ExitCode)"
    }
    if ($run.Stdout.Trim($Blank).Length -gt 0) { return New-Leaf 'detected' $what 'script exited 0 with output' }
    if ($stderr) { return New-Leaf 'error' $what "script exited 0 with only errors: $stderr" }
    return New-Leaf 'not-detected' $what 'script exited 0 without output'
}

function Invoke-Leaf($Rule) {
    try {
        switch -CaseSensitive ([string](Get-Field $Rule 'type')) {
            'file' { return Test-FileRule $Rule }
            'folder' { return Test-FolderRule $Rule }
            'registry' { return Test-RegistryRule $Rule }
            'service' { return Test-ServiceRule $Rule }
            'msi' { return Test-MsiRule $Rule }
            'script' { return Test-ScriptRule $Rule }
        }
    } catch {
        return New-Leaf 'error' (Get-What $Rule) "could not be evaluated: $($_.Exception.Message)"
    }
    throw "unknown rule type '$(Get-Field $Rule 'type')'"
}

function Invoke-Rule($Rule) {
    foreach ($group in @('allOf', 'anyOf')) {
        if (-not (Test-Field $Rule $group)) { continue }
        $findings = @(foreach ($member in (Get-Field $Rule $group)) { Invoke-Rule $member })
        $decisive = 'not-detected'
        $other = 'detected'
        if ($group -ceq 'anyOf') {
            $decisive = 'detected'
            $other = 'not-detected'
        }
        $deciding = @($findings | Where-Object { $_.Verdict -ceq $decisive })
        if ($deciding.Count -gt 0) {
            if ($group -ceq 'anyOf') { $deciding = @($deciding[0]) }
            return New-Finding $decisive $deciding
        }
        $errors = @($findings | Where-Object { $_.Verdict -ceq 'error' })
        if ($errors.Count -gt 0) { return New-Finding 'error' $errors }
        return New-Finding $other $findings
    }
    return Invoke-Leaf $Rule
}

# --- the answer -------------------------------------------------------------------------------

$rulesJson = [Environment]::GetEnvironmentVariable('SSM_detectionRules')
$action = [Environment]::GetEnvironmentVariable('SSM_action')
if ($null -eq $rulesJson -or $null -eq $action) {
    Write-Answer 'the detection rules were not passed as environment variables: SSM Agent 3.3.2746.0 or later is required (interpolationType ENV_VAR)'
    exit 3
}
$rules = $null
$problem = $null
try {
    $rules = Read-Rules $rulesJson $action
} catch {
    $problem = $_.Exception.Message
}
if ($null -ne $problem) {
    Write-Answer "the detection rules are invalid: $problem"
    exit 2
}
$finding = $null
try {
    $finding = Invoke-Rule $rules
} catch {
    Write-Answer "detection could not be evaluated: $($_.Exception.Message)"
    exit 4
}
$reasons = $finding.Reasons -join '; '
if ($finding.Verdict -ceq 'error') {
    Write-Answer "detection could not be evaluated: $reasons"
    exit 4
}
if ($action -ceq 'Uninstall') {
    if ($finding.Verdict -ceq 'detected') {
        Write-Answer "detection after Uninstall: the package is still detected: $reasons"
        exit 1
    }
    Write-Answer "Not detected, as expected after Uninstall: $reasons"
    exit 0
}
if ($finding.Verdict -cne 'detected') {
    Write-Answer "detection after Install: the package is not detected: $reasons"
    exit 1
}
Write-Answer "Detected: $reasons"
exit 0
